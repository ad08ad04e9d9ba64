"""The objectives against straightforward references on random inputs of many shapes.

`loop_reference` is the formula written token by token in Python (loops over rows and tokens,
one scalar at a time), covering TAS, k3 KL, every loss type, and avatar's truncation, split
aggregation and alpha. `trl_grpo_loss` is TRL's GRPOTrainer loss transcribed (vectorised) for the
GRPO baseline. Losses and gradients w.r.t. logp (torch.autograd) must match in float64.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avatar_core.algos import LOSS_TYPES, ObjectiveParams, compute_objective, per_token_loss, tas_weights
from avatar_core.algos.objectives import token_coefficients

F64 = torch.float64


def loop_reference(objective, logp, behaviour, adv, mask, params, ref=None, is_replay=None):
    n_rows, width = logp.shape
    lengths = [int(sum(int(mask[i, t]) for t in range(width))) for i in range(n_rows)]
    replay = [objective == "avatar" and is_replay is not None and bool(is_replay[i]) for i in range(n_rows)]
    row_sums = []
    for i in range(n_rows):
        total = torch.zeros((), dtype=F64)
        for t in range(lengths[i]):
            rho = torch.exp(logp[i, t] - behaviour[i, t])
            if replay[i]:
                rho = torch.clamp(rho, max=params.rho_max)
            clipped = torch.clamp(rho, 1 - params.eps_low, 1 + params.eps_high)
            surrogate = torch.minimum(rho * adv[i], clipped * adv[i])
            if lengths[i] == 1:
                w = 1 + params.tas_lambda
            else:
                w = 1 + params.tas_lambda * (2 * t / (lengths[i] - 1) - 1) ** 2
            token_loss = -w * surrogate
            if params.beta != 0:
                d = ref[i, t] - logp[i, t]
                token_loss = token_loss + params.beta * (torch.exp(d) - d - 1)
            total = total + token_loss
        row_sums.append(total)

    def aggregate(rows):
        if not rows:
            return torch.zeros((), dtype=F64)
        if params.loss_type == "grpo":
            return sum(row_sums[i] / max(lengths[i], 1) for i in rows) / len(rows)
        if params.loss_type == "bnpo":
            return sum(row_sums[i] for i in rows) / max(sum(lengths[i] for i in rows), 1)
        if params.loss_type == "dapo":
            normaliser = params.num_items if params.num_items is not None else max(sum(lengths), 1)
            return sum(row_sums[i] for i in rows) / normaliser
        max_len = params.max_len if params.max_len is not None else width
        return sum(row_sums[i] for i in rows) / (len(rows) * max_len)

    fresh_rows = [i for i in range(n_rows) if not replay[i]]
    replay_rows = [i for i in range(n_rows) if replay[i]]
    return aggregate(fresh_rows) + params.alpha * aggregate(replay_rows)


def trl_grpo_loss(logp, old, adv, mask, params, ref=None):
    """TRL GRPOTrainer._compute_loss (token-level IS, no delta, no entropy mask), one micro-batch."""
    coef_1 = torch.exp(logp - old)
    coef_2 = torch.clamp(coef_1, 1 - params.eps_low, 1 + params.eps_high)
    per_token_loss = -torch.min(coef_1 * adv.unsqueeze(1), coef_2 * adv.unsqueeze(1))
    if params.beta != 0.0:
        per_token_kl = torch.exp(ref - logp) - (ref - logp) - 1
        per_token_loss = per_token_loss + params.beta * per_token_kl
    if params.loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if params.loss_type == "bnpo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if params.loss_type == "dr_grpo":
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * params.max_len)
    return (per_token_loss * mask).sum() / params.num_items  # dapo


def random_batch(seed, n_rows, width, spread):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, width + 1, (n_rows,), generator=gen)  # [B] empty rows included
    mask = (torch.arange(width)[None, :] < lengths[:, None]).to(F64)  # [B, L]
    behaviour = -torch.rand(n_rows, width, generator=gen, dtype=F64) * 3  # [B, L]
    logp = behaviour + spread * torch.randn(n_rows, width, generator=gen, dtype=F64)  # [B, L]
    ref = behaviour + 0.3 * torch.randn(n_rows, width, generator=gen, dtype=F64)  # [B, L]
    adv = torch.randn(n_rows, generator=gen, dtype=F64)  # [B]
    adv[torch.rand(n_rows, generator=gen) < 0.2] = 0.0
    is_replay = torch.rand(n_rows, generator=gen) < 0.5  # [B]
    return logp.requires_grad_(True), behaviour, ref, adv, mask, is_replay


def loss_and_grad(fn, logp):
    loss = fn() + 0 * logp.sum()  # a batch of empty rows gives the reference a constant loss
    (grad,) = torch.autograd.grad(loss, logp)
    return loss.detach(), grad


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_rows=st.integers(1, 5),
    width=st.integers(1, 7),
    loss_type=st.sampled_from(LOSS_TYPES),
    objective=st.sampled_from(["grpo", "avatar"]),
    tas_lambda=st.sampled_from([0.0, 0.3, 1.5]),
    beta=st.sampled_from([0.0, 0.1]),
    eps_low=st.sampled_from([0.1, 0.2]),
    eps_high=st.sampled_from([0.2, 0.28]),
    alpha=st.sampled_from([0.0, 0.5, 1.0]),
    rho_max=st.sampled_from([1.3, 2.0]),
    spread=st.sampled_from([0.05, 0.6]),
    max_len=st.sampled_from([None, 9]),
    num_items=st.sampled_from([None, 13.0]),
)
def test_matches_loop_reference(
    seed, n_rows, width, loss_type, objective, tas_lambda, beta, eps_low, eps_high, alpha, rho_max, spread,
    max_len, num_items,
):  # fmt: skip
    params = ObjectiveParams(
        loss_type=loss_type, eps_low=eps_low, eps_high=eps_high, beta=beta, alpha=alpha, rho_max=rho_max,
        tas_lambda=tas_lambda, max_len=max_len, num_items=num_items,
    )  # fmt: skip
    logp, behaviour, ref, adv, mask, is_replay = random_batch(seed, n_rows, width, spread)
    ours, our_grad = loss_and_grad(
        lambda: compute_objective(
            objective, logp, behaviour, adv, mask, params, ref_logp=ref, is_replay=is_replay
        )[0],
        logp,
    )
    expected, expected_grad = loss_and_grad(
        lambda: loop_reference(objective, logp, behaviour, adv, mask, params, ref, is_replay), logp
    )
    assert torch.allclose(ours, expected, rtol=1e-10, atol=1e-12)
    assert torch.allclose(our_grad, expected_grad, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_rows=st.integers(1, 8),
    width=st.integers(1, 16),
    loss_type=st.sampled_from(LOSS_TYPES),
    beta=st.sampled_from([0.0, 0.04]),
    spread=st.sampled_from([0.05, 0.6]),
)
def test_grpo_equals_trl(seed, n_rows, width, loss_type, beta, spread):
    params = ObjectiveParams(
        loss_type=loss_type, beta=beta, max_len=width + 3, num_items=float(n_rows * width)
    )
    logp, behaviour, ref, adv, mask, _ = random_batch(seed, n_rows, width, spread)
    for name in ("grpo", "avatar"):
        ours, our_grad = loss_and_grad(
            lambda name=name: compute_objective(name, logp, behaviour, adv, mask, params, ref_logp=ref)[0],
            logp,
        )
        trl, trl_grad = loss_and_grad(lambda: trl_grpo_loss(logp, behaviour, adv, mask, params, ref), logp)
        assert torch.allclose(ours, trl, rtol=1e-12, atol=1e-14)
        assert torch.allclose(our_grad, trl_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("chunk", [1, 3, 4])
def test_chunked_evaluation_equals_full(loss_type, chunk):
    """The fused kernel's use: per_token_loss on column chunks (with TAS weights of the whole
    rows), token_coefficients once; the loss and d loss / d logp equal the full evaluation."""
    params = ObjectiveParams(loss_type=loss_type, beta=0.1, tas_lambda=0.3, alpha=0.7)
    logp, behaviour, ref, adv, mask, is_replay = random_batch(7, 5, 10, 0.6)
    full, full_grad = loss_and_grad(
        lambda: compute_objective(
            "avatar", logp, behaviour, adv, mask, params, ref_logp=ref, is_replay=is_replay
        )[0],
        logp,
    )
    coef = token_coefficients(mask, params, is_replay=is_replay)  # [B, L]
    weights = tas_weights(mask, params.tas_lambda)  # [B, L]

    def chunked():
        total = torch.zeros((), dtype=F64)
        for start in range(0, mask.shape[1], chunk):
            cols = slice(start, start + chunk)
            per_token, _ = per_token_loss(
                logp[:, cols], behaviour[:, cols], adv, mask[:, cols], params,
                ref_logp=ref[:, cols], is_replay=is_replay, tas_w=weights[:, cols],
            )  # fmt: skip
            total = total + (per_token * coef[:, cols]).sum()
        return total

    ours, our_grad = loss_and_grad(chunked, logp)
    assert torch.allclose(ours, full, rtol=1e-12)
    assert torch.allclose(our_grad, full_grad, rtol=1e-12, atol=1e-15)
