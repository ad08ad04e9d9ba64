"""The fused kernel equals the full-logits reference over many shapes and chunkings (float32)."""

from __future__ import annotations

import pytest
import torch
from kernel_cases import assert_matches, make_case, run

from avatar_core.algos.params import ObjectiveParams
from avatar_core.kernels.fused_loss import fused_objective
from avatar_core.kernels.reference import reference_objective

PARAMS = ObjectiveParams(loss_type="grpo", beta=0.04, tas_lambda=0.3)

SHAPES = [
    # B, L, H, V
    (1, 1, 4, 3),
    (1, 5, 8, 17),
    (2, 7, 16, 40),
    (4, 13, 12, 97),
    (3, 32, 24, 256),
    (8, 6, 5, 11),
]


@pytest.mark.parametrize(("B", "L", "H", "V"), SHAPES)
@pytest.mark.parametrize("token_chunk", [1, 3, 8, 1024])
@pytest.mark.parametrize("ragged", [False, True])
def test_matches_reference_over_shapes(B, L, H, V, token_chunk, ragged):
    case = make_case(B, L, H, V, seed=B * 100 + L, ragged=ragged, ref=True, replay=B > 1)
    ref = run(reference_objective, case, PARAMS)
    fused = run(fused_objective, case, PARAMS, token_chunk=token_chunk)
    assert_matches(fused, ref, case.mask)


@pytest.mark.parametrize(("B", "L", "H", "V"), [s for s in SHAPES[1:] if s[3] < 200] + [(3, 32, 24, 256)])
@pytest.mark.parametrize("vocab_chunk", [1, 5, 16, 10_000])
@pytest.mark.parametrize("token_chunk", [4, 64])
def test_vocab_streaming_matches_reference(B, L, H, V, vocab_chunk, token_chunk):
    if V > 200 and vocab_chunk < 16:
        vocab_chunk *= 13  # keep the slice count (and the test time) small on the large vocabulary
    case = make_case(B, L, H, V, seed=V, ragged=True, ref=True, replay=True, bias=True)
    ref = run(reference_objective, case, PARAMS, temperature=0.8)
    fused = run(
        fused_objective, case, PARAMS, temperature=0.8, token_chunk=token_chunk, vocab_chunk=vocab_chunk
    )
    assert_matches(fused, ref, case.mask)


def test_token_count_not_divisible_by_chunk():
    # 3 rows x 11 tokens, all real: 33 tokens in chunks of 7 (4 full chunks and one of 5).
    case = make_case(3, 11, 8, 30, seed=5, ragged=False)
    params = ObjectiveParams(loss_type="bnpo")
    ref = run(reference_objective, case, params)
    fused = run(fused_objective, case, params, token_chunk=7)
    assert_matches(fused, ref, case.mask)


def test_padding_tokens_get_no_gradient_and_hold_behaviour_logp():
    case = make_case(3, 8, 8, 20, seed=3, ragged=True)
    params = ObjectiveParams(loss_type="dapo")
    fused = run(fused_objective, case, params, token_chunk=5)
    pad = case.mask == 0
    assert pad.any()
    assert fused["hidden"][pad].abs().max().item() == 0.0
    assert (fused["logp"][pad] == case.behaviour_logp[pad]).all()


def test_all_padding_gives_zero_loss_and_gradients_like_the_reference():
    case = make_case(2, 4, 4, 9, seed=0)
    case.mask = torch.zeros(2, 4)
    ref = run(reference_objective, case, ObjectiveParams())
    fused = run(fused_objective, case, ObjectiveParams())
    assert fused["loss"].item() == ref["loss"].item() == 0.0
    assert fused["weight"].abs().max().item() == 0.0 and fused["stats"]["tokens"] == 0.0
