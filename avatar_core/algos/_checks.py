"""Input checks shared by the algorithms: shapes, finiteness and 0/1 masks.

Each error names the function, the argument and the offending shape or value, so a bad batch is
found from the message alone. The finiteness checks run on per-row tensors ([B]) only; per-token
tensors are left unchecked because reading them back would cost a device sync per chunk.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_tensor(where: str, name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_shape(where: str, name: str, value: Tensor, shape: tuple[int, ...], because: str) -> None:
    """Raise when `value` does not have exactly `shape`; `because` says where the shape comes from."""
    check_tensor(where, name, value)
    if tuple(value.shape) != tuple(shape):
        raise ValueError(
            f"{where}: {name} has shape {tuple(value.shape)}, expected {tuple(shape)} ({because})"
        )


def check_finite(where: str, name: str, value: Tensor) -> None:
    """Raise naming the first NaN or inf entry of `value`."""
    bad = ~torch.isfinite(value)  # same shape as value
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0].tolist())
        position = index[0] if len(index) == 1 else index
        raise ValueError(f"{where}: {name} must be finite, got {value[index].item()} at index {position}")


def check_mask(where: str, mask: Tensor) -> Tensor:
    """Return a 2-D 0/1 mask as float32 (float64 if it already is); reject anything else."""
    check_tensor(where, "mask", mask)
    if mask.dim() != 2:
        raise ValueError(f"{where}: mask must be 2-D [B, L], got shape {tuple(mask.shape)}")
    dtype = torch.float64 if mask.dtype == torch.float64 else torch.float32
    m = mask.to(dtype)  # [B, L]
    if not bool(((m == 0) | (m == 1)).all()):
        bad = ((m != 0) & (m != 1)).nonzero()[0].tolist()
        raise ValueError(
            f"{where}: mask must hold only 0 and 1, got {m[tuple(bad)].item()} at index {tuple(bad)}"
        )
    return m


def check_rows(
    where: str, name: str, value: Tensor | None, n_rows: int, dtype: torch.dtype | None = None
) -> None:
    """A per-row tensor ([B]) that must match the batch size (and, if given, a dtype)."""
    if value is None:
        return
    check_shape(where, name, value, (n_rows,), "one entry per row of logp")
    if dtype is not None and value.dtype != dtype:
        raise ValueError(f"{where}: {name} must have dtype {dtype}, got {value.dtype}")
