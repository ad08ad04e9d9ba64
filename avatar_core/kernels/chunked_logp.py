"""Per-chunk math of the fused loss: logits, chosen-token log-probs and LM-head gradients for a token slice.

For a chunk of n tokens with hidden states h [n, H] the LM head gives logits z = (h W^T + b) / T [n, V].
With logp_t = z_t[id_t] - logsumexp(z_t) and an upstream gradient g_t = d loss / d logp_t, the gradient
of the logits is d z_t = g_t * (onehot(id_t) - softmax(z_t)), so

    grad_h = (d z / T) @ W        [n, H]
    grad_W += (d z / T)^T @ h     [V, H]
    grad_b += sum_t d z_t / T     [V]

Two ways to cover the vocabulary:
- whole vocabulary (default): one [n, V] fp32 buffer holds the logits, is turned in place into the
  unnormalised softmax and then into d z (the one-hot part is a scatter_add, never a [n, V] one-hot);
  3 matmuls per chunk, exactly like the full-logits path, and no recompute.
- streamed (``vocab_chunk`` set): an online logsumexp over [n, vocab_chunk] slices, then a second pass
  that recomputes each slice's logits for the gradient. Peak extra memory O(n x vocab_chunk) instead
  of O(n x V), at the price of a 4th matmul (the recompute).

Matmuls run in the dtype of the LM head (bf16/fp16 stay fast); everything after the logits (softmax,
log-probs, d z) is fp32, and the weight/bias gradients accumulate in fp32 buffers owned by the caller.
The elementwise steps are small functions so that a ``torch.compile``d variant can fuse them on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["GradFn", "accumulation_dtype", "chunk_logp_and_grads", "elementwise_ops", "ensure_compiled"]

_HALF = (torch.float16, torch.bfloat16)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for fp32/bf16/fp16 inputs; fp64 inputs (gradcheck) stay fp64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# Maps the chunk's log-probs [n] to the upstream gradient d loss / d logp [n].
GradFn = Callable[[torch.Tensor], torch.Tensor]


def _softmax_parts(
    logits: torch.Tensor, ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Turn logits [n, V] into exp(logits - max) in place; return chosen logit, row max and row sum."""
    chosen = logits.gather(1, ids[:, None]).squeeze(1)  # [n]
    row_max = logits.amax(dim=1)  # [n]
    logits.sub_(row_max[:, None]).exp_()  # [n, V] unnormalised softmax
    row_sum = logits.sum(dim=1)  # [n]
    return chosen, row_max, row_sum


def _dlogits_(
    unnormalised: torch.Tensor, row_sum: torch.Tensor, scale: torch.Tensor, ids: torch.Tensor
) -> None:
    """In place: exp(logits - max) [n, V] -> scale * (onehot(ids) - softmax), scale = g / T [n]."""
    unnormalised.mul_((-scale / row_sum)[:, None])  # [n, V] = -scale * softmax
    unnormalised.scatter_add_(1, ids[:, None], scale[:, None])  # [n, V] += scale * onehot


# Elementwise steps by backend; "compile" is added on first use by ensure_compiled().
elementwise_ops: dict[str, tuple[Callable, Callable]] = {"eager": (_softmax_parts, _dlogits_)}


def ensure_compiled() -> None:
    """Register torch.compile'd elementwise steps (Triton kernels on CUDA, C++ on CPU) once."""
    if "compile" not in elementwise_ops:
        elementwise_ops["compile"] = (
            torch.compile(_softmax_parts, dynamic=True),
            torch.compile(_dlogits_, dynamic=True),
        )


def _logits(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, temperature: float
) -> torch.Tensor:
    """(h W^T + b) / T as fp32 [n, Vc]; the matmul runs in the LM head's dtype."""
    raw = torch.addmm(bias, h, weight.T) if bias is not None else h @ weight.T  # [n, Vc]
    logits = raw.float() if raw.dtype in _HALF else raw  # [n, Vc] fp32 (fp64 stays fp64)
    return logits.div_(temperature) if temperature != 1.0 else logits


def _accumulate(
    dlogits: torch.Tensor,
    h: torch.Tensor,
    weight: torch.Tensor,
    grad_weight: torch.Tensor | None,
    grad_bias: torch.Tensor | None,
    need_hidden: bool,
) -> torch.Tensor | None:
    """Given d logits / T [n, Vc] (fp32) for one vocab slice: add to grad_W/grad_b, return grad_h [n, H]."""
    if grad_bias is not None:
        grad_bias.add_(dlogits.sum(dim=0))  # [Vc]
    dl = dlogits.to(weight.dtype)  # [n, Vc] a no-op unless the LM head is half precision
    if grad_weight is not None:
        if dl.dtype == grad_weight.dtype:
            grad_weight.addmm_(dl.T, h)  # [Vc, H] in place, no [Vc, H] temporary
        else:
            grad_weight.add_(dl.T @ h)  # [Vc, H] half product, fp32 accumulation
    if not need_hidden:
        return None
    return dl @ weight  # [n, H]


def _whole_vocab(h, ids, weight, bias, temperature, grad_fn, grad_weight, grad_bias, need_hidden, ops):
    softmax_parts, dlogits_ = ops
    logits = _logits(h, weight, bias, temperature)  # [n, V] fp32, the only [n, V] buffer
    chosen, row_max, row_sum = softmax_parts(logits, ids)  # logits now holds exp(z - max)
    logp = chosen - row_max - row_sum.log()  # [n]
    if grad_fn is None:
        return logp, None
    scale = grad_fn(logp) / temperature  # [n]
    dlogits_(logits, row_sum, scale, ids)  # logits now holds d z / T
    return logp, _accumulate(logits, h, weight, grad_weight, grad_bias, need_hidden)


def _streamed_vocab(
    h, ids, weight, bias, temperature, grad_fn, grad_weight, grad_bias, need_hidden, vocab_chunk
):
    n, V = h.shape[0], weight.shape[0]
    acc = {"device": h.device, "dtype": accumulation_dtype(weight.dtype)}
    slices = [(v0, min(v0 + vocab_chunk, V)) for v0 in range(0, V, vocab_chunk)]
    row_max = torch.full((n,), float("-inf"), **acc)  # [n]
    row_sum = torch.zeros(n, **acc)  # [n]
    chosen = torch.zeros(n, **acc)  # [n]
    for v0, v1 in slices:  # pass 1: online logsumexp and the chosen logit
        logits = _logits(h, weight[v0:v1], None if bias is None else bias[v0:v1], temperature)  # [n, Vc]
        local = ids - v0  # [n]
        inside = (local >= 0) & (local < v1 - v0)  # [n]
        picked = logits.gather(1, local.clamp(0, v1 - v0 - 1)[:, None]).squeeze(1)  # [n]
        chosen = torch.where(inside, picked, chosen)  # [n]
        new_max = torch.maximum(row_max, logits.amax(dim=1))  # [n]
        slice_sum = logits.sub_(new_max[:, None]).exp_().sum(dim=1)  # [n]
        row_sum = row_sum * torch.exp(row_max - new_max) + slice_sum  # [n] rescaled to the new max
        row_max = new_max
    lse = row_max + row_sum.log()  # [n]
    logp = chosen - lse  # [n]
    if grad_fn is None:
        return logp, None
    scale = grad_fn(logp) / temperature  # [n]
    grad_h = torch.zeros(n, h.shape[1], **acc) if need_hidden else None  # [n, H]
    rows = torch.arange(n, device=h.device)  # [n]
    for v0, v1 in slices:  # pass 2: recompute each slice's logits, then its gradients
        logits = _logits(h, weight[v0:v1], None if bias is None else bias[v0:v1], temperature)  # [n, Vc]
        dlogits = logits.sub_(lse[:, None]).exp_().mul_(-scale[:, None])  # [n, Vc] = -scale * softmax
        local = ids - v0  # [n]
        inside = (local >= 0) & (local < v1 - v0)  # [n]
        dlogits.index_put_((rows[inside], local[inside]), scale[inside], accumulate=True)  # += scale * onehot
        gw = None if grad_weight is None else grad_weight[v0:v1]
        gb = None if grad_bias is None else grad_bias[v0:v1]
        part = _accumulate(dlogits, h, weight[v0:v1], gw, gb, need_hidden)  # [n, H] or None
        if grad_h is not None:
            grad_h.add_(part)
    return logp, grad_h


@torch.no_grad()
def chunk_logp_and_grads(
    h: torch.Tensor,
    ids: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    temperature: float,
    grad_fn: GradFn | None,
    grad_weight: torch.Tensor | None,
    grad_bias: torch.Tensor | None,
    need_hidden: bool,
    vocab_chunk: int | None = None,
    backend: str = "eager",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [n] (fp32) of ``ids`` under the LM head for hidden states h [n, H]; with ``grad_fn``,
    also accumulate grad_W [V, H] / grad_b [V] in place (fp32 buffers or None) and return grad_h [n, H]
    (in the LM head's dtype, or fp32 when streaming; None unless ``need_hidden``)."""
    if vocab_chunk is not None and vocab_chunk < weight.shape[0]:
        return _streamed_vocab(
            h, ids, weight, bias, temperature, grad_fn, grad_weight, grad_bias, need_hidden, vocab_chunk
        )
    ops = elementwise_ops[backend]
    return _whole_vocab(h, ids, weight, bias, temperature, grad_fn, grad_weight, grad_bias, need_hidden, ops)
