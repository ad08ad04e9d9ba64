"""avatar: equals grpo in the baseline setting; J_off truncation, split aggregation and stats by hand.

Hand-worked batch (eps 0.2, rho_max 2, grpo loss type):
  row 0, fresh:    3 tokens, A = +1, ratios 1.0, 1.5, 0.5 -> l = -1.0, -1.2, -0.5; J_on = -2.7 / 3 = -0.9
  row 1, replayed: 2 tokens, A = -2, ratios 3.0, 0.5
      token 0: rho 3.0 is truncated to 2.0: s = min(2 * -2, 1.2 * -2) = -4.0 -> l = 4.0, gradient 0
               (without truncation, as in grpo: min(-6, -2.4) = -6 -> l = 6, gradient 6 / 4 = 1.5)
      token 1: s = min(-1.0, 0.8 * -2) = -1.6 -> l = 1.6 (clipped: gradient 0)
      J_off = (4.0 + 1.6) / 2 = 2.8
  alpha 0.5: loss = J_on + alpha * J_off = -0.9 + 1.4 = 0.5
  grpo on the same batch: mean(-0.9, (6 + 1.6) / 2) = mean(-0.9, 3.8) = 1.45
"""

from __future__ import annotations

import math

import pytest
import torch

from avatar_core.algos import LOSS_TYPES, ObjectiveParams, compute_objective

F64 = torch.float64
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -2.0], dtype=F64)
BEHAVIOUR = torch.full((2, 3), -1.0, dtype=F64)
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [3.0, 0.5, 1.0]], dtype=F64)
REPLAY = torch.tensor([False, True])


def policy_logp() -> torch.Tensor:
    return (BEHAVIOUR + RATIOS.log()).requires_grad_(True)  # [2, 3]


def test_truncated_off_policy_term_by_hand():
    logp = policy_logp()
    params = ObjectiveParams(alpha=0.5, rho_max=2.0)
    loss, stats = compute_objective("avatar", logp, BEHAVIOUR, ADV, MASK, params, is_replay=REPLAY)
    assert loss.item() == pytest.approx(0.5, rel=1e-12)
    (grad,) = torch.autograd.grad(loss, logp)
    # row 0 as in grpo (coefficient 1/3 for a one-row part); row 1: truncated and clipped -> 0
    expected = torch.tensor([[-1 / 3, 0.0, -0.5 / 3], [0.0, 0.0, 0.0]], dtype=F64)
    assert torch.allclose(grad, expected, rtol=1e-12)
    assert stats["loss_on"] == pytest.approx(-0.9) and stats["loss_off"] == pytest.approx(2.8)
    assert stats["replay_tokens"] == 2
    assert stats["replay_ratio_mean"] == pytest.approx((3.0 + 0.5) / 2)  # raw ratios
    assert stats["replay_truncated_frac"] == pytest.approx(0.5)
    assert stats["tokens"] == 5


def test_clip_stats_use_the_truncated_ratio():
    _, stats = compute_objective(
        "avatar", policy_logp(), BEHAVIOUR, ADV, MASK, ObjectiveParams(alpha=0.5), is_replay=REPLAY
    )
    assert stats["clip_low_frac"] == pytest.approx(1 / 5)  # (1, 1): 0.5 < 0.8 with A < 0
    assert stats["clip_high_frac"] == pytest.approx(1 / 5)  # (0, 1): 1.5 > 1.2 with A > 0


def test_grpo_ignores_replay_flags_and_does_not_truncate():
    logp = policy_logp()
    params = ObjectiveParams(alpha=0.5, rho_max=2.0)
    loss, stats = compute_objective("grpo", logp, BEHAVIOUR, ADV, MASK, params, is_replay=REPLAY)
    assert loss.item() == pytest.approx(1.45, rel=1e-12)
    (grad,) = torch.autograd.grad(loss, logp)
    assert grad[1, 0].item() == pytest.approx(1.5)
    assert "replay_tokens" not in stats


def test_positive_advantage_is_unaffected_by_truncation():
    # A > 0 and rho 3 > rho_max: min(2 A, 1.2 A) = 1.2 A = min(3 A, 1.2 A), as without truncation
    logp = (BEHAVIOUR[:1] + torch.tensor([[math.log(3.0)] * 3], dtype=F64)).requires_grad_(True)
    adv = torch.tensor([1.0], dtype=F64)
    mask = torch.ones(1, 3)
    on, _ = compute_objective(
        "avatar", logp, BEHAVIOUR[:1], adv, mask, ObjectiveParams(), is_replay=torch.tensor([False])
    )
    off, stats = compute_objective(
        "avatar", logp, BEHAVIOUR[:1], adv, mask, ObjectiveParams(), is_replay=torch.tensor([True])
    )
    assert on.item() == pytest.approx(-1.2) and off.item() == pytest.approx(-1.2)
    assert stats["replay_truncated_frac"] == 1.0


@pytest.mark.parametrize(
    ("loss_type", "expected"),
    [
        ("grpo", -0.9 + 0.5 * 2.8),
        ("bnpo", -2.7 / 3 + 0.5 * 5.6 / 2),  # token mean of each part
        ("dapo", (-2.7 + 0.5 * 5.6) / 5),  # one normaliser: all 5 tokens
        ("dr_grpo", -2.7 / (1 * 3) + 0.5 * 5.6 / (1 * 3)),  # each part: sum / (its rows * max_len 3)
    ],
)
def test_split_aggregation_for_each_loss_type(loss_type, expected):
    params = ObjectiveParams(loss_type=loss_type, alpha=0.5)
    loss, _ = compute_objective("avatar", policy_logp(), BEHAVIOUR, ADV, MASK, params, is_replay=REPLAY)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def random_batch(seed: int, n_rows: int = 6, width: int = 9):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (n_rows,), generator=gen)  # [B]
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()  # [B, L]
    behaviour = -torch.rand(n_rows, width, generator=gen, dtype=F64) * 2  # [B, L]
    logp = behaviour + 0.7 * torch.randn(n_rows, width, generator=gen, dtype=F64)  # [B, L]
    ref = behaviour + 0.2 * torch.randn(n_rows, width, generator=gen, dtype=F64)  # [B, L]
    adv = torch.randn(n_rows, generator=gen, dtype=F64)  # [B]
    return logp, behaviour, ref, adv, mask


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_avatar_equals_grpo_without_tas_alpha_and_replay(loss_type, seed):
    logp, behaviour, ref, adv, mask = random_batch(seed)
    params = ObjectiveParams(loss_type=loss_type, beta=0.1, tas_lambda=0.0, alpha=0.0)
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    grpo_loss, grpo_stats = compute_objective(
        "grpo", logp, behaviour, adv, mask, params, ref_logp=ref, group_ids=ids
    )
    no_flags, _ = compute_objective("avatar", logp, behaviour, adv, mask, params, ref_logp=ref)
    all_fresh, stats = compute_objective(
        "avatar",
        logp,
        behaviour,
        adv,
        mask,
        params,
        ref_logp=ref,
        is_replay=torch.zeros(6, dtype=torch.bool),
        group_ids=ids,
    )
    assert torch.equal(no_flags, grpo_loss) and torch.equal(all_fresh, grpo_loss)  # bit for bit
    assert {k: stats[k] for k in grpo_stats} == grpo_stats
    assert stats["replay_tokens"] == 0 and math.isnan(stats["replay_ratio_mean"])


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo"])
def test_alpha_zero_drops_replayed_rows(loss_type):
    logp, behaviour, ref, adv, mask = random_batch(3)
    replay = torch.tensor([True, False, True, False, False, True])
    params = ObjectiveParams(loss_type=loss_type, alpha=0.0, tas_lambda=0.3)
    ours, _ = compute_objective("avatar", logp, behaviour, adv, mask, params, is_replay=replay)
    fresh = ~replay
    expected, _ = compute_objective("grpo", logp[fresh], behaviour[fresh], adv[fresh], mask[fresh], params)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-12)


def test_all_replayed_batch_is_alpha_times_j_off():
    logp, behaviour, _, adv, mask = random_batch(4)
    replay = torch.ones(6, dtype=torch.bool)
    params = ObjectiveParams(alpha=0.25, rho_max=math.inf)  # no truncation: J_off is grpo's loss
    ours, stats = compute_objective("avatar", logp, behaviour, adv, mask, params, is_replay=replay)
    grpo, _ = compute_objective("grpo", logp, behaviour, adv, mask, params)
    assert ours.item() == pytest.approx(0.25 * grpo.item(), rel=1e-12)
    assert stats["loss_on"] == 0.0 and stats["replay_truncated_frac"] == 0.0
