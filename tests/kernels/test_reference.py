"""The full-logits reference itself: hand-worked values and an explicit per-token formula (float64)."""

from __future__ import annotations

import math

import pytest
import torch
from kernel_cases import make_case, rel_err

from avatar_core.algos.params import ObjectiveParams
from avatar_core.kernels.fused_loss import fused_objective
from avatar_core.kernels.reference import full_logits_logp, reference_objective


def test_full_logits_logp_equals_the_explicit_formula():
    case = make_case(2, 3, 4, 6, seed=1, dtype=torch.float64, bias=True)
    temperature = 0.7
    logp = full_logits_logp(
        case.hidden, case.weight, case.ids, temperature=temperature, lm_head_bias=case.bias
    )
    for b in range(2):
        for t in range(3):
            z = [
                (
                    sum(case.hidden[b, t, k].item() * case.weight[v, k].item() for k in range(4))
                    + case.bias[v].item()
                )
                / temperature
                for v in range(6)
            ]
            expected = z[case.ids[b, t]] - math.log(sum(math.exp(x) for x in z))
            assert logp[b, t].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("fn", [reference_objective, fused_objective], ids=["reference", "fused"])
def test_hand_worked_single_token(fn):
    """V = 2, H = 1, W = [[1], [0]], h = ln 3: softmax = (3/4, 1/4), logp(token 0) = ln(3/4).

    With behaviour_logp = ln(3/4) the ratio is 1, the one-token grpo loss is -A, and
    d loss / d logp = -A; d logp / d h = 1 - 3/4, d logp / d W = ((1 - 3/4) h, -(1/4) h).
    """
    A = 2.0
    hidden = torch.full((1, 1, 1), math.log(3.0), dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([[1.0], [0.0]], dtype=torch.float64, requires_grad=True)
    ids = torch.zeros(1, 1, dtype=torch.long)
    mask = torch.ones(1, 1, dtype=torch.float64)
    behaviour = torch.full((1, 1), math.log(0.75), dtype=torch.float64)
    advantages = torch.tensor([A], dtype=torch.float64)
    loss, stats, logp = fn(
        hidden, weight, ids, mask, behaviour, advantages, ObjectiveParams(), objective="grpo"
    )
    loss.backward()
    assert logp.item() == pytest.approx(math.log(0.75), abs=1e-12)
    assert loss.item() == pytest.approx(-A, abs=1e-12)
    assert stats["ratio_mean"] == pytest.approx(1.0, abs=1e-12)
    assert hidden.grad.item() == pytest.approx(-A / 4, abs=1e-12)
    h = math.log(3.0)
    assert weight.grad[:, 0].tolist() == pytest.approx([-A * h / 4, A * h / 4], abs=1e-12)


def test_float32_reference_agrees_with_float64():
    low = make_case(3, 8, 16, 64, seed=4, dtype=torch.float32, ref=True)
    high = make_case(3, 8, 16, 64, seed=4, dtype=torch.float64, ref=True)
    params = ObjectiveParams(beta=0.1, tas_lambda=0.3)
    losses = []
    for case in (low, high):
        loss, _, _ = reference_objective(*case.args(), params, ref_logp=case.ref_logp)
        loss.backward()
        losses.append(loss.detach())
    assert rel_err(losses[0], losses[1]) < 1e-6
    assert rel_err(low.weight.grad, high.weight.grad) < 1e-5
    assert rel_err(low.hidden.grad, high.hidden.grad) < 1e-5
