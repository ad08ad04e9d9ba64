"""Fused chunked log-prob + policy objective: the GRPO/AVATAR loss without the [tokens, vocab] logits.

The plain path builds logits [B, L, V] = hidden @ W^T / T, takes log_softmax, gathers the completion
tokens and feeds the log-probs to `compute_objective`; at V = 151,936 those logits (and their
log_softmax and gradient) are what runs a GRPO step out of memory (TRL issue 3678). Here they never
exist in full:

1. The aggregation coefficients c_t (loss = sum_t l_t * c_t) depend on the mask only, so they are
   known before any logit (`token_coefficients`).
2. Walking over the real (mask != 0) tokens in chunks of `token_chunk`, the kernel computes the
   chunk's logits [n, V] (or streams them over vocabulary slices with an online logsumexp when
   `vocab_chunk` is set), the chosen-token log-prob logp_t, then g_t = d(l_t * c_t) / d logp_t by a
   local autograd call of the objective's per-token loss (elementwise in the token dimension, so the other
   positions hold a finite placeholder and receive no gradient), and immediately the chunk's
   gradients: d z = g_t * (onehot - softmax) / T, grad_hidden = d z @ W, grad_W += d z^T @ h,
   grad_b += sum d z. See `chunked_logp` for the in-place buffer reuse.
3. Only those gradients are kept (the size of the inputs). The loss value and the stats come from
   `compute_objective` on the assembled [B, L] log-probs, so they equal the reference path's; the
   backward pass only scales the stored gradients by grad_output.

This costs the same 3 matmuls as the full-logits path (4 with vocabulary streaming: one recompute)
and peak extra memory O(token_chunk x V) (O(token_chunk x vocab_chunk) when streaming). Gradients are
computed only for the inputs that require grad (with grad mode on). Padded positions (mask 0) are
skipped: their log-prob in the returned tensor is the behaviour log-prob (ratio 1, always finite);
their gradient is 0 as in the reference, since c_t = 0 there.

Backend: `backend="auto"` picks `compile` on CUDA (torch.compile fuses the softmax/d z elementwise
steps into Triton kernels, where they otherwise dominate the time) and the pure PyTorch `eager`
path everywhere else; both can be forced. There is no hand-written Triton kernel: our machines have
no GPU to test one on, and the compiled path covers the fusion that matters.

Departure from the stated design: behaviour_logp, advantages and ref_logp are constants of the
objective (as in TRL, verl and the authors' code); no gradient is returned for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avatar_core.algos.objectives import OBJECTIVES, compute_objective, token_coefficients
from avatar_core.algos.params import ObjectiveParams
from avatar_core.algos.tas import tas_weights
from avatar_core.kernels.checks import check_loss_inputs
from avatar_core.kernels.chunked_logp import accumulation_dtype, chunk_logp_and_grads, ensure_compiled

__all__ = ["BACKENDS", "fused_objective", "select_backend"]

BACKENDS = ("auto", "eager", "compile")


def select_backend(device: torch.device, requested: str = "auto") -> str:
    """`auto` -> `compile` on CUDA, `eager` elsewhere; `eager`/`compile` are taken as given."""
    if requested not in BACKENDS:
        raise ValueError(
            f"fused_objective: unknown backend {requested!r}; valid names: {', '.join(BACKENDS)}"
        )
    if requested == "auto":
        return "compile" if device.type == "cuda" else "eager"
    return requested


@dataclass
class _Batch:
    """The non-differentiated inputs of the objective, shared by the token-gradient closure."""

    objective: str
    completion_ids: torch.Tensor  # [B, L]
    mask: torch.Tensor  # [B, L]
    behaviour_logp: torch.Tensor  # [B, L]
    advantages: torch.Tensor  # [B]
    params: ObjectiveParams
    ref_logp: torch.Tensor | None  # [B, L]
    is_replay: torch.Tensor | None  # [B]
    group_ids: torch.Tensor | None  # [B]
    temperature: float
    token_chunk: int
    vocab_chunk: int | None
    backend: str
    need: tuple[bool, bool, bool]  # gradients wanted for hidden, weight, bias
    stats: dict


class _TokenGrad:
    """g_t = d(l_t * c_t) / d logp_t for a chunk of flat token positions, by a local autograd call."""

    def __init__(self, batch: _Batch, placeholder: torch.Tensor) -> None:
        self.batch = batch
        self.placeholder = placeholder  # [B * L] finite log-probs for the positions outside the chunk
        self.loss_fn = OBJECTIVES.get(batch.objective)  # the objective's per-token loss
        self.coefficients = token_coefficients(
            batch.mask, batch.params, is_replay=batch.is_replay, objective=batch.objective
        ).to(placeholder.dtype)  # [B, L]
        self.tas_w = tas_weights(batch.mask, batch.params.tas_lambda)  # [B, L] once, not per chunk

    def __call__(self, positions: torch.Tensor, logp_chunk: torch.Tensor) -> torch.Tensor:
        b = self.batch
        with torch.enable_grad():
            leaf = logp_chunk.detach().to(self.placeholder.dtype).requires_grad_(True)  # [n]
            logp = self.placeholder.index_put((positions,), leaf).view(b.mask.shape)  # [B, L]
            per_token, _ = self.loss_fn(
                logp,
                b.behaviour_logp,
                b.advantages,
                b.mask,
                b.params,
                ref_logp=b.ref_logp,
                is_replay=b.is_replay,
                tas_w=self.tas_w,
            )  # [B, L]
            (grad,) = torch.autograd.grad((per_token * self.coefficients).sum(), leaf)  # [n]
        return grad.to(logp_chunk.dtype)


class _FusedObjective(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, batch: _Batch):  # noqa: ANN001, ANN205 (autograd signature)
        B, L, H = hidden.shape
        V = weight.shape[0]
        need_hidden, need_weight, need_bias = batch.need
        acc_dtype = accumulation_dtype(weight.dtype)
        hidden_flat = hidden.reshape(B * L, H)  # [B*L, H]
        ids_flat = batch.completion_ids.reshape(-1).long()  # [B*L]
        positions = (batch.mask.reshape(-1) != 0).nonzero().squeeze(1)  # [N] real tokens only
        # Padded positions keep the behaviour log-prob: ratio 1 and k3 finite wherever they are read.
        logp_flat = batch.behaviour_logp.detach().reshape(-1).to(acc_dtype).clone()  # [B*L]
        grad_hidden = torch.zeros_like(hidden_flat) if need_hidden else None  # [B*L, H]
        grad_weight = (
            torch.zeros(V, H, dtype=acc_dtype, device=weight.device) if need_weight else None
        )  # [V, H]
        grad_bias = torch.zeros(V, dtype=acc_dtype, device=weight.device) if need_bias else None  # [V]
        token_grad = _TokenGrad(batch, logp_flat.clone()) if any(batch.need) else None
        for start in range(0, positions.numel(), batch.token_chunk):
            chunk = positions[start : start + batch.token_chunk]  # [n]
            grad_fn = None if token_grad is None else (lambda lp, chunk=chunk: token_grad(chunk, lp))
            logp_chunk, grad_h = chunk_logp_and_grads(
                hidden_flat[chunk],  # [n, H]
                ids_flat[chunk],  # [n]
                weight,
                bias,
                batch.temperature,
                grad_fn,
                grad_weight,
                grad_bias,
                need_hidden,
                batch.vocab_chunk,
                batch.backend,
            )
            logp_flat[chunk] = logp_chunk
            if grad_h is not None:
                grad_hidden[chunk] = grad_h.to(hidden.dtype)
        logp = logp_flat.view(B, L)  # [B, L]
        loss, stats = compute_objective(
            batch.objective,
            logp,
            batch.behaviour_logp,
            batch.advantages,
            batch.mask,
            batch.params,
            ref_logp=batch.ref_logp,
            is_replay=batch.is_replay,
            group_ids=batch.group_ids,
        )
        batch.stats.update(stats)
        # Saved as intermediates (not ctx attributes) so autograd frees them after a backward
        # without retain_graph, even while the caller still holds the loss.
        ctx.save_for_backward(
            None if grad_hidden is None else grad_hidden.view(B, L, H),
            None if grad_weight is None else grad_weight.to(weight.dtype),
            None if grad_bias is None or bias is None else grad_bias.to(bias.dtype),
        )
        ctx.mark_non_differentiable(logp)
        return loss.detach().clone(), logp

    @staticmethod
    def backward(ctx, grad_loss, _grad_logp):  # noqa: ANN001, ANN205 (autograd signature)
        unit = bool(grad_loss == 1)  # the usual loss.backward(): hand over the stored tensors as they are
        grads = [g if g is None or unit else g * grad_loss.to(g.dtype) for g in ctx.saved_tensors]
        return grads[0], grads[1], grads[2], None


def fused_objective(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    completion_ids: torch.Tensor,
    mask: torch.Tensor,
    behaviour_logp: torch.Tensor,
    advantages: torch.Tensor,
    params: ObjectiveParams,
    *,
    objective: str = "avatar",
    ref_logp: torch.Tensor | None = None,
    is_replay: torch.Tensor | None = None,
    group_ids: torch.Tensor | None = None,
    temperature: float = 1.0,
    lm_head_bias: torch.Tensor | None = None,
    token_chunk: int = 1024,
    vocab_chunk: int | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """The objective `objective` of the completion tokens under the LM head, without full logits.

    hidden [B, L, H] are the final hidden states at the positions that predict completion_ids [B, L]
    (already shifted); lm_head_weight [V, H] (and lm_head_bias [V]) the LM head. Returns
    (loss [], stats as `compute_objective` returns them, logp [B, L] detached, fp32 or fp64).
    """
    check_loss_inputs(
        "fused_objective",
        hidden,
        lm_head_weight,
        completion_ids,
        mask,
        behaviour_logp,
        advantages,
        ref_logp=ref_logp,
        is_replay=is_replay,
        group_ids=group_ids,
        lm_head_bias=lm_head_bias,
        temperature=temperature,
    )
    if objective not in OBJECTIVES:
        raise KeyError(
            f"fused_objective: unknown objective {objective!r}; valid names: {', '.join(OBJECTIVES)}"
        )
    if isinstance(token_chunk, bool) or not isinstance(token_chunk, int) or token_chunk <= 0:
        raise ValueError(f"fused_objective: token_chunk must be a positive integer, got {token_chunk!r}")
    if vocab_chunk is not None and (
        isinstance(vocab_chunk, bool) or not isinstance(vocab_chunk, int) or vocab_chunk <= 0
    ):
        raise ValueError(
            f"fused_objective: vocab_chunk must be a positive integer or None, got {vocab_chunk!r}"
        )
    chosen_backend = select_backend(hidden.device, backend)
    if chosen_backend == "compile":
        ensure_compiled()
    grad_on = torch.is_grad_enabled()
    need = (
        grad_on and hidden.requires_grad,
        grad_on and lm_head_weight.requires_grad,
        grad_on and lm_head_bias is not None and lm_head_bias.requires_grad,
    )
    stats: dict = {}
    batch = _Batch(
        objective=objective,
        completion_ids=completion_ids,
        mask=mask.detach(),
        behaviour_logp=behaviour_logp.detach(),
        advantages=advantages.detach(),
        params=params,
        ref_logp=None if ref_logp is None else ref_logp.detach(),
        is_replay=None if is_replay is None else is_replay.detach(),
        group_ids=group_ids,
        temperature=float(temperature),
        token_chunk=token_chunk,
        vocab_chunk=vocab_chunk,
        backend=chosen_backend,
        need=need,
        stats=stats,
    )
    loss, logp = _FusedObjective.apply(hidden, lm_head_weight, lm_head_bias, batch)
    return loss, stats, logp
