"""Objectives on a 2x3 batch worked by hand: every loss type, TAS, KL, gradients and stats.

The batch (eps 0.2, so the clip range is [0.8, 1.2]):
  row 0: 3 tokens, A = +1, ratios 1.0, 1.5, 0.5
         s = min(rho A, clip(rho) A) = 1.0, min(1.5, 1.2) = 1.2, min(0.5, 0.8) = 0.5
         l = -s = -1.0, -1.2, -0.5 (sum -2.7)
  row 1: 2 tokens + 1 pad, A = -2, ratios 0.5, 1.5
         s = min(-1.0, 0.8 * -2 = -1.6) = -1.6, min(-3.0, 1.2 * -2 = -2.4) = -3.0
         l = 1.6, 3.0 (sum 4.6)
  grpo:    mean(-2.7 / 3, 4.6 / 2) = mean(-0.9, 2.3) = 0.7
  bnpo:    (-2.7 + 4.6) / 5 tokens = 0.38
  dapo:    same as bnpo without num_items (0.38); with num_items = 10: 1.9 / 10 = 0.19
  dr_grpo: 1.9 / (B = 2 * max_len): max_len None -> L = 3: 0.31667; max_len 5: 0.19
"""

from __future__ import annotations

import math

import pytest
import torch

from avatar_core.algos import ObjectiveParams, compute_objective, per_token_loss, token_coefficients

F64 = torch.float64
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -2.0], dtype=F64)
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [0.5, 1.5, 1.0]], dtype=F64)
BEHAVIOUR = torch.full((2, 3), -1.0, dtype=F64)


def policy_logp(ratios: torch.Tensor = RATIOS) -> torch.Tensor:
    return (BEHAVIOUR + ratios.log()).requires_grad_(True)  # [2, 3]


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("grpo", ObjectiveParams(loss_type="grpo"), 0.7),
        ("bnpo", ObjectiveParams(loss_type="bnpo"), 0.38),
        ("dapo", ObjectiveParams(loss_type="dapo"), 0.38),
        ("dapo_num_items", ObjectiveParams(loss_type="dapo", num_items=10.0), 0.19),
        ("dr_grpo", ObjectiveParams(loss_type="dr_grpo"), 1.9 / 6),
        ("dr_grpo_max_len", ObjectiveParams(loss_type="dr_grpo", max_len=5), 0.19),
    ],
)
@pytest.mark.parametrize("objective", ["grpo", "avatar"])
def test_each_loss_type(name, params, expected, objective):
    loss, _ = compute_objective(objective, policy_logp(), BEHAVIOUR, ADV, MASK, params)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_per_token_losses_and_gradients():
    logp = policy_logp()
    per_token, inter = per_token_loss(logp, BEHAVIOUR, ADV, MASK, ObjectiveParams())
    assert torch.allclose(per_token[:, :2], torch.tensor([[-1.0, -1.2], [1.6, 3.0]], dtype=F64))
    assert per_token[0, 2].item() == pytest.approx(-0.5)
    # d l / d logp = -rho A where the unclipped term is the minimum, 0 where the clipped one is:
    # row 0: -1, 0 (clipped high), -0.5; row 1: 0 (clipped low), -1.5 * -2 = 3; grpo coefficients
    # are 1 / (3 tokens * 2 rows) for row 0 and 1 / (2 * 2) for row 1.
    loss, _ = compute_objective("grpo", logp, BEHAVIOUR, ADV, MASK, ObjectiveParams())
    (grad,) = torch.autograd.grad(loss, logp)
    expected = torch.tensor([[-1 / 6, 0.0, -0.5 / 6], [0.0, 3 / 4, 0.0]], dtype=F64)
    assert torch.allclose(grad, expected, rtol=1e-12)
    assert inter["is_low_clipped"].tolist() == [[False, False, False], [True, False, False]]
    assert inter["is_high_clipped"].tolist() == [[False, True, False], [False, False, False]]


def test_coefficients_by_hand():
    assert torch.allclose(
        token_coefficients(MASK, ObjectiveParams(loss_type="grpo")),
        torch.tensor([[1 / 6, 1 / 6, 1 / 6], [1 / 4, 1 / 4, 0.0]]),
    )
    assert torch.allclose(token_coefficients(MASK, ObjectiveParams(loss_type="bnpo")), MASK / 5)
    assert torch.allclose(
        token_coefficients(MASK, ObjectiveParams(loss_type="dapo", num_items=8.0)), MASK / 8
    )
    assert torch.allclose(token_coefficients(MASK, ObjectiveParams(loss_type="dr_grpo", max_len=4)), MASK / 8)


def test_tas_by_hand():
    # lambda 0.3: row 0 (L = 3) weights 1.3, 1.0, 1.3; row 1 (L = 2) weights 1.3, 1.3
    # row 0: -(1.3 * 1.0 + 1.0 * 1.2 + 1.3 * 0.5) = -3.15 -> / 3 = -1.05
    # row 1: 1.3 * 1.6 + 1.3 * 3.0 = 5.98 -> / 2 = 2.99; grpo: mean(-1.05, 2.99) = 0.97
    for objective in ("grpo", "avatar"):
        loss, stats = compute_objective(
            objective, policy_logp(), BEHAVIOUR, ADV, MASK, ObjectiveParams(tas_lambda=0.3)
        )
        assert loss.item() == pytest.approx(0.97, rel=1e-12)
        assert stats["tas_weight_mean"] == pytest.approx((1.3 + 1.0 + 1.3 + 1.3 + 1.3) / 5)


def test_kl_by_hand():
    # ref - logp = ln 2 at token (0, 0), 0 elsewhere: k3 = 1 - ln 2 there, 0 elsewhere.
    # grpo: 0.7 + beta * (1 - ln 2) / (3 tokens * 2 rows); the padded position must not count.
    logp = policy_logp()
    ref = logp.detach().clone()
    ref[0, 0] += math.log(2)
    ref[1, 2] += 5.0  # padding: ignored
    params = ObjectiveParams(beta=0.1)
    loss, stats = compute_objective("grpo", logp, BEHAVIOUR, ADV, MASK, params, ref_logp=ref)
    assert loss.item() == pytest.approx(0.7 + 0.1 * (1 - math.log(2)) / 6, rel=1e-12)
    assert stats["kl_mean"] == pytest.approx((1 - math.log(2)) / 5)
    # KL gradient at (0, 0): beta * (1 - exp(ln 2)) * 1/6 added to the surrogate's -1/6
    (grad,) = torch.autograd.grad(loss, logp)
    assert grad[0, 0].item() == pytest.approx(-1 / 6 + 0.1 * (1 - 2) / 6)
    # beta = 0 with a reference: KL is reported, not added
    loss0, stats0 = compute_objective("grpo", logp, BEHAVIOUR, ADV, MASK, ObjectiveParams(), ref_logp=ref)
    assert loss0.item() == pytest.approx(0.7) and stats0["kl_mean"] == pytest.approx((1 - math.log(2)) / 5)


def test_stats_by_hand():
    ids = torch.tensor([0, 1])
    _, stats = compute_objective(
        "grpo", policy_logp(), BEHAVIOUR, ADV, MASK, ObjectiveParams(), group_ids=ids
    )
    assert stats["tokens"] == 5
    assert stats["ratio_mean"] == pytest.approx((1.0 + 1.5 + 0.5 + 0.5 + 1.5) / 5)  # pad ratio excluded
    assert stats["clip_low_frac"] == pytest.approx(1 / 5)  # (1, 0): rho 0.5 < 0.8 and A < 0
    assert stats["clip_high_frac"] == pytest.approx(1 / 5)  # (0, 1): rho 1.5 > 1.2 and A > 0
    assert stats["tas_weight_mean"] == 1.0
    assert stats["zero_adv_group_frac"] == 0.0
    assert math.isnan(stats["kl_mean"])  # no reference: undefined, not 0
    assert set(stats) == {
        "tokens", "ratio_mean", "clip_low_frac", "clip_high_frac", "kl_mean", "tas_weight_mean",
        "zero_adv_group_frac",
    }  # fmt: skip


def test_zero_adv_group_frac_counts_groups_with_all_zero_advantages():
    adv = torch.tensor([0.0, 0.0, 1.0, -1.0, 0.0, 0.0], dtype=F64)
    ids = torch.tensor([4, 4, 9, 9, 2, 2])
    mask = torch.ones(6, 2)
    logp = torch.zeros(6, 2, dtype=F64)
    _, stats = compute_objective("grpo", logp, logp, adv, mask, ObjectiveParams(), group_ids=ids)
    assert stats["zero_adv_group_frac"] == pytest.approx(2 / 3)
    _, stats = compute_objective("grpo", logp, logp, adv, mask, ObjectiveParams())
    assert math.isnan(stats["zero_adv_group_frac"])


def test_low_precision_inputs_are_upcast():
    logp = policy_logp().detach().to(torch.bfloat16)
    loss, _ = compute_objective(
        "grpo", logp, BEHAVIOUR.to(torch.bfloat16), ADV.float(), MASK, ObjectiveParams()
    )
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(0.7, abs=2e-2)
