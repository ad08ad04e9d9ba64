"""Input validation shared by the fused loss kernel and its full-logits reference.

Both entry points take the same arguments, so they share one check that names the offending tensor,
its shape and the shape it should have. Checks run on shapes and dtypes only, plus one range check
of the completion ids against the vocabulary (an out-of-range id would otherwise index past the LM
head silently in the fused path and raise an opaque gather error in the reference).
"""

from __future__ import annotations

import torch

__all__ = ["check_loss_inputs"]


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _expect(where: str, name: str, tensor: torch.Tensor, shape: tuple[int, ...], meaning: str) -> None:
    if _shape(tensor) != shape:
        raise ValueError(f"{where}: {name} has shape {_shape(tensor)}, expected {shape} ({meaning})")


def check_loss_inputs(
    where: str,
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    completion_ids: torch.Tensor,
    mask: torch.Tensor,
    behaviour_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    ref_logp: torch.Tensor | None,
    is_replay: torch.Tensor | None,
    group_ids: torch.Tensor | None,
    lm_head_bias: torch.Tensor | None,
    temperature: float,
) -> None:
    """Raise ValueError naming the tensor whose shape, dtype or values do not fit the others."""
    if hidden.dim() != 3:
        raise ValueError(f"{where}: hidden must be [B, L, H], got shape {_shape(hidden)}")
    if lm_head_weight.dim() != 2:
        raise ValueError(f"{where}: lm_head_weight must be [V, H], got shape {_shape(lm_head_weight)}")
    B, L, H = hidden.shape
    V = lm_head_weight.shape[0]
    if lm_head_weight.shape[1] != H:
        raise ValueError(
            f"{where}: lm_head_weight has shape {_shape(lm_head_weight)} but hidden has H={H} "
            f"(hidden shape {_shape(hidden)}); expected lm_head_weight [V, {H}]"
        )
    bl = (B, L)
    _expect(where, "completion_ids", completion_ids, bl, "[B, L] like hidden's first two dims")
    _expect(where, "mask", mask, bl, "[B, L] like hidden's first two dims")
    _expect(where, "behaviour_logp", behaviour_logp, bl, "[B, L] like hidden's first two dims")
    _expect(where, "advantages", advantages, (B,), "one advantage per sequence")
    if ref_logp is not None:
        _expect(where, "ref_logp", ref_logp, bl, "[B, L] like hidden's first two dims")
    if is_replay is not None:
        _expect(where, "is_replay", is_replay, (B,), "one flag per sequence")
    if group_ids is not None:
        _expect(where, "group_ids", group_ids, (B,), "one group id per sequence")
    if lm_head_bias is not None:
        _expect(where, "lm_head_bias", lm_head_bias, (V,), "one bias per vocabulary entry")
    if completion_ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"{where}: completion_ids must be an integer tensor, got dtype {completion_ids.dtype}"
        )
    if not hidden.is_floating_point() or not lm_head_weight.is_floating_point():
        raise ValueError(
            f"{where}: hidden ({hidden.dtype}) and lm_head_weight ({lm_head_weight.dtype}) must be floating point"
        )
    if hidden.dtype != lm_head_weight.dtype:
        raise ValueError(
            f"{where}: hidden has dtype {hidden.dtype} but lm_head_weight has {lm_head_weight.dtype}; "
            "they must match (the LM head runs in one precision)"
        )
    if hidden.device != lm_head_weight.device:
        raise ValueError(
            f"{where}: hidden is on {hidden.device} but lm_head_weight on {lm_head_weight.device}"
        )
    if not temperature > 0:
        raise ValueError(f"{where}: temperature must be > 0, got {temperature}")
    if completion_ids.numel() > 0:
        lo, hi = int(completion_ids.min()), int(completion_ids.max())
        if lo < 0 or hi >= V:
            raise ValueError(
                f"{where}: completion_ids must lie in [0, {V}) (lm_head_weight has V={V}), got range [{lo}, {hi}]"
            )
