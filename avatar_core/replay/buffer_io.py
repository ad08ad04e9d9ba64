"""Saving and restoring the hierarchical replay buffer: safetensors for the arrays, JSON for the rest.

Layout (N stored trajectories, T tokens in all), in `replay_buffer.safetensors`:
  completion_ids [T] int64 and behaviour_logp [T] float32, every completion concatenated;
  offsets [N + 1] int64 (trajectory i is tokens offsets[i]:offsets[i+1]);
  reward, advantage, kl, rbar [N] float64; policy_version, insert_index [N] int64;
  hinted [N] bool; tier [N] uint8 (index into easy, medium, hard); rng_state: the torch generator.
and in `replay_buffer.json`: format and version, the buffer settings, the insertion counter, the
FIFO cursors and the N prompt ids. Rows are stored tier by tier, oldest first, which is the
order they are restored in. Never pickle: both files are plain data and are validated on load;
any inconsistency is reported naming the file and the field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from avatar_core.replay.allocation import TIERS
from avatar_core.replay.trajectory import Trajectory, TrajectoryError

FORMAT = "avatar-replay-buffer"
VERSION = 1
TENSOR_FILE = "replay_buffer.safetensors"
META_FILE = "replay_buffer.json"
_FLOAT_COLUMNS = ("reward", "advantage", "kl", "rbar")
_INT_COLUMNS = ("policy_version", "insert_index")


def pack(
    rows: list[tuple[str, Trajectory]],
    rng_state: torch.Tensor,
    config: dict[str, Any],
    insert_counter: int,
    fifo_cursor: dict[str, int],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, meta) of the given (tier, trajectory) rows."""
    trajs = [t for _, t in rows]
    lengths = torch.tensor([len(t) for t in trajs], dtype=torch.long)  # [N]
    offsets = torch.zeros(len(trajs) + 1, dtype=torch.long)  # [N + 1]
    offsets[1:] = torch.cumsum(lengths, dim=0)  # [N]
    ids = [torch.zeros(0, dtype=torch.long)] + [
        t.completion_ids for t in trajs
    ]  # the empty head keeps cat defined
    logp = [torch.zeros(0, dtype=torch.float32)] + [t.behaviour_logp for t in trajs]
    tensors: dict[str, torch.Tensor] = {
        "completion_ids": torch.cat(ids),  # [T]
        "behaviour_logp": torch.cat(logp),  # [T]
        "offsets": offsets,
        "hinted": torch.tensor([t.hinted for t in trajs], dtype=torch.bool),  # [N]
        "tier": torch.tensor([TIERS.index(tier) for tier, _ in rows], dtype=torch.uint8),  # [N]
        "rng_state": rng_state.clone(),  # [S] uint8
    }
    for name in _FLOAT_COLUMNS:
        tensors[name] = torch.tensor([getattr(t, name) for t in trajs], dtype=torch.float64)  # [N]
    for name in _INT_COLUMNS:
        tensors[name] = torch.tensor([getattr(t, name) for t in trajs], dtype=torch.long)  # [N]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": config,
        "insert_counter": insert_counter,
        "fifo_cursor": dict(fifo_cursor),
        "n_trajectories": len(trajs),
        "prompt_ids": [t.prompt_id for t in trajs],
    }
    return tensors, meta


def check_meta(meta: Any) -> dict[str, Any]:
    """The metadata, after checking its format, version and the fields every reader needs."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"replay buffer state: field format must be {FORMAT!r}, got {got!r}")
    if meta.get("version") != VERSION:
        raise ValueError(f"replay buffer state: field version must be {VERSION}, got {meta.get('version')!r}")
    for name in ("config", "insert_counter", "fifo_cursor", "prompt_ids"):
        if name not in meta:
            raise ValueError(f"replay buffer state: field {name} is missing")
    if not isinstance(meta["config"], dict):
        raise ValueError("replay buffer state: field config must be a mapping")
    return meta


def unpack(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any], capacities: dict[str, int]
) -> tuple[list[tuple[str, Trajectory]], torch.Tensor, int, dict[str, int]]:
    """(rows, rng_state, insert_counter, fifo_cursor) from a state, validated against `capacities`."""
    check_meta(meta)
    required = ("completion_ids", "behaviour_logp", "offsets", "hinted", "tier", "rng_state")
    for name in required + _FLOAT_COLUMNS + _INT_COLUMNS:
        if name not in tensors:
            raise ValueError(f"replay buffer state: tensor {name} is missing")
    prompt_ids = meta["prompt_ids"]
    n = len(prompt_ids)
    for name in ("hinted", "tier") + _FLOAT_COLUMNS + _INT_COLUMNS:
        if tuple(tensors[name].shape) != (n,):
            raise ValueError(
                f"replay buffer state: tensor {name} has shape {tuple(tensors[name].shape)}, expected ({n},)"
            )
    ids, logp, offsets = tensors["completion_ids"], tensors["behaviour_logp"], tensors["offsets"]
    if tuple(offsets.shape) != (n + 1,) or int(offsets[0]) != 0 or bool((offsets[1:] < offsets[:-1]).any()):
        raise ValueError(f"replay buffer state: tensor offsets must be {n + 1} non-decreasing values from 0")
    if not (ids.dim() == 1 and logp.dim() == 1 and ids.shape[0] == logp.shape[0] == int(offsets[-1])):
        raise ValueError(
            f"replay buffer state: completion_ids {tuple(ids.shape)} and behaviour_logp {tuple(logp.shape)} "
            f"must both hold offsets[-1] = {int(offsets[-1])} tokens"
        )
    tier_codes = tensors["tier"].tolist()
    if any(code >= len(TIERS) for code in tier_codes):
        raise ValueError(f"replay buffer state: tensor tier holds codes outside 0..{len(TIERS) - 1}")
    counter = int(meta["insert_counter"])
    cursors = {t: int(meta["fifo_cursor"].get(t, -1)) for t in TIERS}
    columns = {name: tensors[name].tolist() for name in _FLOAT_COLUMNS + _INT_COLUMNS}
    hinted = tensors["hinted"].tolist()
    bounds = offsets.tolist()
    rows: list[tuple[str, Trajectory]] = []
    last_index = {t: -1 for t in TIERS}
    for i, prompt_id in enumerate(prompt_ids):
        tier = TIERS[tier_codes[i]]
        index = columns["insert_index"][i]
        if not (last_index[tier] < index < counter):
            raise ValueError(
                f"replay buffer state: row {i} (prompt {prompt_id!r}) has insert_index {index}; "
                f"a tier's rows must be in increasing insertion order below insert_counter {counter}"
            )
        last_index[tier] = index
        start, end = bounds[i], bounds[i + 1]
        try:
            traj = Trajectory(
                prompt_id=prompt_id,
                completion_ids=ids[start:end].to(torch.long).clone(),  # [L]
                behaviour_logp=logp[start:end].to(torch.float32).clone(),  # [L]
                reward=columns["reward"][i],
                advantage=columns["advantage"][i],
                kl=columns["kl"][i],
                rbar=columns["rbar"][i],
                policy_version=columns["policy_version"][i],
                hinted=bool(hinted[i]),
                insert_index=index,
            )
        except TrajectoryError as err:
            raise ValueError(f"replay buffer state: row {i}: {err}") from err
        rows.append((tier, traj))
    sizes = {t: sum(1 for tier, _ in rows if tier == t) for t in TIERS}
    for t in TIERS:
        if sizes[t] > capacities[t]:
            raise ValueError(
                f"replay buffer state: tier {t} holds {sizes[t]} rows, above its capacity {capacities[t]}"
            )
    return rows, tensors["rng_state"].to(torch.uint8), counter, cursors


def write(directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write both files atomically (temporary name, then rename), tensors first."""
    directory.mkdir(parents=True, exist_ok=True)
    tensor_path, meta_path = directory / TENSOR_FILE, directory / META_FILE
    tmp_tensor, tmp_meta = directory / (TENSOR_FILE + ".tmp"), directory / (META_FILE + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_tensor), metadata={"format": FORMAT})
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_tensor, tensor_path)
    os.replace(tmp_meta, meta_path)


def read(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """(tensors, meta, description for errors); a missing or unreadable file is named."""
    tensor_path, meta_path = directory / TENSOR_FILE, directory / META_FILE
    for path in (tensor_path, meta_path):
        if not path.is_file():
            raise FileNotFoundError(f"replay buffer state file {path} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"replay buffer state file {meta_path} is corrupt (not valid JSON): {err}") from err
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"replay buffer state file {tensor_path} is corrupt: {err}") from err
    return tensors, meta, f"replay buffer state in {directory}"
