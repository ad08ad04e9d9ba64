"""TAS weights: hand-worked values, endpoints, centre, symmetry, L = 1, padding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avatar_core.algos.tas import tas_weights


def right_padded(lengths: list[int], width: int) -> torch.Tensor:
    return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()  # [B, L]


def test_hand_worked_rows():
    mask = right_padded([5, 4, 1, 0], 6)
    w = tas_weights(mask, 0.3)
    # L=5: u = 2t/4 - 1 = -1, -0.5, 0, 0.5, 1 -> 1 + 0.3 u^2 = 1.3, 1.075, 1.0, 1.075, 1.3
    assert torch.allclose(w[0], torch.tensor([1.3, 1.075, 1.0, 1.075, 1.3, 0.0]))
    # L=4: u = 2t/3 - 1 = -1, -1/3, 1/3, 1 -> 1.3, 1 + 0.3/9, 1 + 0.3/9, 1.3
    assert torch.allclose(w[1], torch.tensor([1.3, 1 + 0.3 / 9, 1 + 0.3 / 9, 1.3, 0.0, 0.0]))
    # L=1: the only token is both endpoints -> 1 + lambda
    assert torch.allclose(w[2], torch.tensor([1.3, 0, 0, 0, 0, 0]))
    # an empty row is all padding
    assert torch.equal(w[3], torch.zeros(6))


def test_lambda_zero_is_the_mask():
    mask = right_padded([3, 1, 6], 6)
    assert torch.equal(tas_weights(mask, 0.0), mask.float())


def test_bool_and_float_masks_agree():
    mask = right_padded([2, 5], 5)
    assert torch.equal(tas_weights(mask.bool(), 0.5), tas_weights(mask.float(), 0.5))


def test_positions_count_real_tokens_so_left_padding_works():
    right = tas_weights(torch.tensor([[1, 1, 1, 0, 0]]), 0.4)
    left = tas_weights(torch.tensor([[0, 0, 1, 1, 1]]), 0.4)
    assert torch.equal(left[0, 2:], right[0, :3])


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=6),
    lam=st.floats(min_value=0.0, max_value=3.0),
    extra=st.integers(min_value=0, max_value=5),
)
def test_properties(lengths, lam, extra):
    width = max(lengths) + extra
    w = tas_weights(right_padded(lengths, width), lam).double()
    for row, n in enumerate(lengths):
        real = w[row, :n]
        assert torch.allclose(real[0], torch.tensor(1 + lam, dtype=torch.float64))  # first token
        assert torch.allclose(real[-1], torch.tensor(1 + lam, dtype=torch.float64))  # last token
        assert torch.allclose(real, real.flip(0), atol=1e-6)  # symmetric
        assert bool((real >= 1 - 1e-6).all()) and bool((real <= 1 + lam + 1e-5).all())
        if n % 2 == 1 and n > 1:
            assert torch.allclose(real[n // 2], torch.tensor(1.0, dtype=torch.float64))  # centre
        assert torch.equal(w[row, n:], torch.zeros(width - n, dtype=torch.float64))  # padding


@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf")])
def test_bad_lambda(lam):
    with pytest.raises(ValueError, match="tas_weights: lam must be a finite number >= 0"):
        tas_weights(torch.ones(1, 3), lam)


def test_bad_mask():
    with pytest.raises(
        ValueError, match=r"tas_weights: mask must hold only 0 and 1, got 2.0 at index \(0, 1\)"
    ):
        tas_weights(torch.tensor([[1, 2, 0]]), 0.3)
    with pytest.raises(ValueError, match=r"tas_weights: mask must be 2-D \[B, L\], got shape \(3,\)"):
        tas_weights(torch.ones(3), 0.3)
