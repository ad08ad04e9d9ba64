"""Random but realistic inputs for the fused-loss tests, and comparisons against the reference.

Behaviour and reference log-probs are the true log-probs plus small noise, so ratios sit near 1
and a fair share of tokens is clipped, truncated or not, as in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from avatar_core.kernels.reference import full_logits_logp


@dataclass
class Case:
    hidden: torch.Tensor  # [B, L, H]
    weight: torch.Tensor  # [V, H]
    ids: torch.Tensor  # [B, L]
    mask: torch.Tensor  # [B, L]
    behaviour_logp: torch.Tensor  # [B, L]
    advantages: torch.Tensor  # [B]
    ref_logp: torch.Tensor | None = None  # [B, L]
    is_replay: torch.Tensor | None = None  # [B]
    group_ids: torch.Tensor | None = None  # [B]
    bias: torch.Tensor | None = None  # [V]
    extra: dict = field(default_factory=dict)

    def args(self) -> tuple:
        return (self.hidden, self.weight, self.ids, self.mask, self.behaviour_logp, self.advantages)

    def kwargs(self) -> dict:
        return {
            "ref_logp": self.ref_logp,
            "is_replay": self.is_replay,
            "group_ids": self.group_ids,
            "lm_head_bias": self.bias,
        }


def make_case(
    B: int = 3,
    L: int = 9,
    H: int = 16,
    V: int = 40,
    *,
    seed: int = 0,
    ragged: bool = True,
    replay: bool = False,
    ref: bool = False,
    bias: bool = False,
    temperature: float = 1.0,
    dtype: torch.dtype = torch.float32,
    noise: float = 0.3,
) -> Case:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, H, generator=gen, dtype=torch.float64)  # [B, L, H]
    weight = torch.randn(V, H, generator=gen, dtype=torch.float64) / math.sqrt(H)  # [V, H]
    bias_t = 0.5 * torch.randn(V, generator=gen, dtype=torch.float64) if bias else None  # [V]
    ids = torch.randint(0, V, (B, L), generator=gen)  # [B, L]
    if ragged:
        lengths = torch.randint(1, L + 1, (B,), generator=gen)  # [B]
        lengths[0] = L  # one full row, so padding never covers the whole batch
        mask = (torch.arange(L)[None, :] < lengths[:, None]).float()  # [B, L]
    else:
        mask = torch.ones(B, L)  # [B, L]
    with torch.no_grad():
        true_logp = full_logits_logp(
            hidden, weight, ids, temperature=temperature, lm_head_bias=bias_t
        )  # [B, L]
    behaviour = true_logp + noise * torch.randn(B, L, generator=gen, dtype=torch.float64)  # [B, L]
    ref_logp = true_logp + noise * torch.randn(B, L, generator=gen, dtype=torch.float64) if ref else None
    advantages = torch.randn(B, generator=gen, dtype=torch.float64)  # [B]
    is_replay = (torch.arange(B) % 2 == 1) if replay else None  # [B] every other row replayed
    group_ids = torch.arange(B) // 2  # [B]
    as_dtype = lambda t: None if t is None else t.to(dtype).requires_grad_(True)  # noqa: E731
    data_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    return Case(
        hidden=as_dtype(hidden),
        weight=as_dtype(weight),
        ids=ids,
        mask=mask.to(data_dtype),
        behaviour_logp=behaviour.to(data_dtype),
        advantages=advantages.to(data_dtype),
        ref_logp=None if ref_logp is None else ref_logp.to(data_dtype),
        is_replay=is_replay,
        group_ids=group_ids,
        bias=as_dtype(bias_t),
    )


def run(fn, case: Case, params, **kwargs) -> dict:
    """Loss, stats, logp and the gradients of every leaf that requires grad."""
    leaves = {"hidden": case.hidden, "weight": case.weight, "bias": case.bias}
    for t in leaves.values():
        if t is not None:
            t.grad = None
    merged = {**case.kwargs(), **kwargs}
    loss, stats, logp = fn(*case.args(), params, **merged)
    if loss.requires_grad:
        loss.backward()
    grads = {k: None if t is None or t.grad is None else t.grad.clone() for k, t in leaves.items()}
    return {"loss": loss.detach(), "stats": stats, "logp": logp, **grads}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float64 (absolute error when b is 0)."""
    a, b = a.double(), b.double()
    denom = b.norm().item()
    return (a - b).norm().item() / (denom if denom > 0 else 1.0)


def stats_close(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if math.isnan(y):
            assert math.isnan(x), (k, x, y)
        else:
            assert abs(x - y) <= tol * max(1.0, abs(y)), (k, x, y)


def assert_matches(fused: dict, ref: dict, mask: torch.Tensor, tol: float = 1e-5) -> None:
    assert rel_err(fused["loss"], ref["loss"]) <= tol, (fused["loss"], ref["loss"])
    m = mask.bool()
    assert rel_err(fused["logp"][m], ref["logp"][m]) <= tol
    for name in ("hidden", "weight", "bias"):
        if ref[name] is None:
            assert fused[name] is None, name
        else:
            assert fused[name] is not None, name
            assert rel_err(fused[name], ref[name]) <= tol, (name, rel_err(fused[name], ref[name]))
    stats_close(fused["stats"], ref["stats"], tol)
