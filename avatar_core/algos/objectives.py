"""Policy objectives `grpo` and `avatar`: per-token loss, aggregation coefficients, and the loss.

Per token (paper Sec. 3; TRL's GRPO loss): rho = exp(logp - behaviour_logp),
s = min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A), l = -(w_TAS * s) + beta * k3.
- `grpo` treats every row as fresh (ignores is_replay, alpha and rho_max). With tas_lambda = 0
  it is TRL's GRPO loss for the same loss type, eps and beta.
- `avatar` is J = J_on + alpha * J_off: replayed rows (is_replay) use the stored behaviour
  log-probs as the importance-sampling denominator and their ratio is first truncated,
  rho <- min(rho, rho_max); fresh and replayed rows are aggregated separately (each part as if it
  were the whole batch, see `aggregation.py`) and the replayed part is weighted by alpha. With
  tas_lambda = 0, alpha = 0 and no replayed rows it equals `grpo` exactly.
- TAS multiplies the surrogate before beta * k3 is added; both objectives honour tas_lambda, so
  "GRPO + TAS" is a config change.
The authors' released code has no separate J_off: it feeds replayed rows, with advantages
alpha * (r - Rbar) / (std + 1e-4), through the ordinary loss. That mode is `grpo` (or `avatar`
with is_replay=None) on advantages from `advantages.baseline_advantages` times alpha.

The split serves the fused chunked kernel: `per_token_loss` is elementwise over tokens (no
reduction across tokens; TAS weights can be passed in precomputed for a chunk) and
differentiable w.r.t. logp; `token_coefficients` is computed once; loss = (l * c).sum().
Per-token math runs in at least float32 (bf16 log-probs are upcast).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from avatar_core.algos._checks import check_finite, check_mask, check_rows, check_shape, check_tensor
from avatar_core.algos.aggregation import part_coefficients
from avatar_core.algos.kl import k3_kl
from avatar_core.algos.params import ObjectiveParams
from avatar_core.algos.stats import objective_stats, replay_stats, to_floats
from avatar_core.algos.tas import tas_weights
from avatar_core.registry import Registry

PerTokenLoss = Callable[..., tuple[Tensor, dict[str, Tensor]]]
OBJECTIVES: Registry[PerTokenLoss] = Registry("objective")


def _check_inputs(
    where: str,
    logp: Tensor,
    behaviour_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    params: ObjectiveParams,
    ref_logp: Tensor | None,
    is_replay: Tensor | None,
    tas_w: Tensor | None,
) -> None:
    check_tensor(where, "logp", logp)
    if logp.dim() != 2:
        raise ValueError(f"{where}: logp must be 2-D [B, L], got shape {tuple(logp.shape)}")
    if not logp.is_floating_point():
        raise ValueError(f"{where}: logp must be a floating-point tensor, got {logp.dtype}")
    if not isinstance(params, ObjectiveParams):
        raise TypeError(f"{where}: params must be an ObjectiveParams, got {type(params).__name__}")
    shape = tuple(logp.shape)
    check_shape(where, "behaviour_logp", behaviour_logp, shape, "the shape of logp")
    check_shape(where, "mask", mask, shape, "the shape of logp")
    check_rows(where, "advantages", advantages, shape[0])
    check_finite(where, "advantages", advantages)
    check_rows(where, "is_replay", is_replay, shape[0], dtype=torch.bool)
    if ref_logp is not None:
        check_shape(where, "ref_logp", ref_logp, shape, "the shape of logp")
    elif params.beta != 0:
        raise ValueError(f"{where}: ref_logp is required when beta > 0 (beta = {params.beta})")
    if tas_w is not None:
        check_shape(where, "tas_w", tas_w, shape, "the shape of logp")


def _per_token_loss(
    logp: Tensor,
    behaviour_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    params: ObjectiveParams,
    ref_logp: Tensor | None,
    is_replay: Tensor | None,
    tas_w: Tensor | None,
    where: str,
) -> tuple[Tensor, dict[str, Tensor]]:
    _check_inputs(where, logp, behaviour_logp, advantages, mask, params, ref_logp, is_replay, tas_w)
    dtype = torch.promote_types(logp.dtype, torch.float32)
    logp = logp.to(dtype)  # [B, L]
    adv = advantages.to(dtype).unsqueeze(1)  # [B, 1]
    ratio = torch.exp(logp - behaviour_logp.to(dtype))  # [B, L]
    if is_replay is None:
        ratio_used = ratio  # [B, L]
        truncated = torch.zeros_like(ratio, dtype=torch.bool)  # [B, L]
    else:
        replay = is_replay.unsqueeze(1)  # [B, 1]
        # clamp(max=) passes no gradient where it truncates: those tokens stop pushing rho up/down.
        ratio_used = torch.where(replay, ratio.clamp(max=params.rho_max), ratio)  # [B, L]
        truncated = replay & (ratio > params.rho_max)  # [B, L]
    clipped = ratio_used.clamp(1 - params.eps_low, 1 + params.eps_high)  # [B, L]
    surrogate = torch.minimum(ratio_used * adv, clipped * adv)  # [B, L]
    if tas_w is None:
        # float64 log-probs get float64 weights (1 + 0.3 is not exact in float32)
        tas_mask = mask.to(torch.float64) if dtype == torch.float64 else mask  # [B, L]
        tas_w = tas_weights(tas_mask, params.tas_lambda)  # [B, L]
    tas_w = tas_w.to(dtype)  # [B, L]
    loss = -(tas_w * surrogate)  # [B, L]
    kl = None
    if ref_logp is not None:
        kl = k3_kl(logp, ref_logp.to(dtype))  # [B, L]
        if params.beta != 0:
            loss = loss + params.beta * kl  # [B, L]
    intermediates = {
        "ratio": ratio.detach(),  # [B, L] raw rho, before truncation
        "is_low_clipped": (ratio_used < 1 - params.eps_low) & (adv < 0),  # [B, L] TRL's definition
        "is_high_clipped": (ratio_used > 1 + params.eps_high) & (adv > 0),  # [B, L]
        "is_truncated": truncated,  # [B, L] replayed tokens with rho > rho_max
        "tas_w": tas_w.detach(),  # [B, L]
    }
    if kl is not None:
        intermediates["kl"] = kl.detach()  # [B, L]
    return loss, intermediates


@OBJECTIVES.register("grpo")
def grpo_per_token_loss(
    logp: Tensor,
    behaviour_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    params: ObjectiveParams,
    *,
    ref_logp: Tensor | None = None,
    is_replay: Tensor | None = None,
    tas_w: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO per-token loss [B, L]: every row is fresh (is_replay is accepted and ignored)."""
    return _per_token_loss(logp, behaviour_logp, advantages, mask, params, ref_logp, None, tas_w, "grpo")


@OBJECTIVES.register("avatar")
def per_token_loss(
    logp: Tensor,
    behaviour_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    params: ObjectiveParams,
    *,
    ref_logp: Tensor | None = None,
    is_replay: Tensor | None = None,
    tas_w: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """AVATAR per-token loss l [B, L] (TAS-weighted, + beta * k3) and per-token intermediates.

    logp, behaviour_logp, mask, ref_logp: [B, L]; advantages [B]; is_replay [B] bool (None: all
    rows fresh). Elementwise over tokens, so it may be called on a column slice [B, Lc] of the
    batch; the TAS weights then need the whole row, so pass tas_w = tas_weights(full_mask,
    lam)[:, slice]. Intermediates (detached): ratio (raw), is_low_clipped, is_high_clipped,
    is_truncated, tas_w, and kl when ref_logp is given. Padded positions must hold finite values;
    their loss is removed by the zero coefficients, not here.
    """
    return _per_token_loss(
        logp, behaviour_logp, advantages, mask, params, ref_logp, is_replay, tas_w, "avatar"
    )


def token_coefficients(
    mask: Tensor, params: ObjectiveParams, *, is_replay: Tensor | None = None, objective: str = "avatar"
) -> Tensor:
    """Coefficients c [B, L] with loss = (l * c).sum() (see `aggregation.py` for each loss type).

    avatar: fresh and replayed rows are aggregated separately and the replayed part is weighted
    by alpha (J = J_on + alpha * J_off); an empty part contributes 0. grpo ignores is_replay.
    """
    OBJECTIVES.get(objective)  # unknown names raise a KeyError listing the valid ones
    if not isinstance(params, ObjectiveParams):
        raise TypeError(f"token_coefficients: params must be an ObjectiveParams, got {type(params).__name__}")
    m = check_mask("token_coefficients", mask)  # [B, L]
    check_rows("token_coefficients", "is_replay", is_replay, m.shape[0], dtype=torch.bool)
    if objective == "grpo" or is_replay is None:
        return part_coefficients(m, None, params)  # [B, L]
    on = part_coefficients(m, ~is_replay, params)  # [B, L]
    off = part_coefficients(m, is_replay, params)  # [B, L]
    return on + params.alpha * off  # [B, L]


def compute_objective(
    name: str,
    logp: Tensor,
    behaviour_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    params: ObjectiveParams,
    *,
    ref_logp: Tensor | None = None,
    is_replay: Tensor | None = None,
    group_ids: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The scalar loss to minimise and its stats.

    stats: tokens, ratio_mean, clip_low_frac, clip_high_frac, kl_mean, tas_weight_mean,
    zero_adv_group_frac (needs group_ids [B]); avatar adds replay_tokens, replay_ratio_mean,
    replay_truncated_frac, loss_on and loss_off. See `stats.py` for the definitions.
    """
    loss_fn = OBJECTIVES.get(name)
    per_token, intermediates = loss_fn(
        logp, behaviour_logp, advantages, mask, params, ref_logp=ref_logp, is_replay=is_replay
    )  # [B, L]
    if group_ids is not None:
        check_rows(name, "group_ids", group_ids, logp.shape[0])
    with_replay = name == "avatar"
    coef_mask = mask.to(torch.float64 if per_token.dtype == torch.float64 else torch.float32)  # [B, L]
    coef = token_coefficients(coef_mask, params, is_replay=is_replay, objective=name)  # [B, L]
    loss = (per_token * coef).sum()  # []
    with torch.no_grad():
        stats = objective_stats(intermediates, coef_mask, advantages, group_ids)
        if with_replay:
            stats.update(replay_stats(per_token, intermediates, coef_mask, is_replay, params))
    return loss, to_floats(stats)
