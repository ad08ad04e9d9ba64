"""k3 KL: hand-worked values, non-negativity, gradient, shape errors."""

from __future__ import annotations

import math

import pytest
import torch

from avatar_core.algos.kl import k3_kl


def test_hand_worked_values():
    logp = torch.zeros(1, 3, dtype=torch.float64)
    ref = torch.tensor([[0.0, math.log(2), -math.log(2)]], dtype=torch.float64)
    # d = ref - logp: exp(d) - d - 1 -> 0; 2 - ln2 - 1 = 1 - ln2; 0.5 + ln2 - 1 = ln2 - 0.5
    expected = torch.tensor([[0.0, 1 - math.log(2), math.log(2) - 0.5]], dtype=torch.float64)
    assert torch.allclose(k3_kl(logp, ref), expected)


def test_non_negative_and_zero_on_agreement():
    gen = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 7, generator=gen)
    ref = torch.randn(4, 7, generator=gen)
    assert bool((k3_kl(logp, ref) >= 0).all())
    assert torch.equal(k3_kl(logp, logp), torch.zeros(4, 7))


def test_gradient_wrt_logp():
    # d k3 / d logp = 1 - exp(ref - logp): at ref - logp = ln 2 it is -1
    logp = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    ref = torch.full((1, 1), math.log(2), dtype=torch.float64)
    (grad,) = torch.autograd.grad(k3_kl(logp, ref).sum(), logp)
    assert torch.allclose(grad, torch.tensor([[-1.0]], dtype=torch.float64))


def test_shape_mismatch_names_the_argument():
    with pytest.raises(ValueError, match=r"k3_kl: ref_logp has shape \(2, 4\), expected \(2, 3\)"):
        k3_kl(torch.zeros(2, 3), torch.zeros(2, 4))
