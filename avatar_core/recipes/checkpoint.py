"""Training state on disk as safetensors + JSON: optimiser, scheduler, RNG streams, counters.

Nothing is pickled. A nested state (an optimiser's `state_dict()`, say) is split into a flat
`{key: tensor}` map written with safetensors and a JSON tree in which every tensor is replaced by
`{"__tensor__": key}`; loading reverses the split. Directories are written to a temporary sibling
and renamed into place, so a process killed mid-save, or a write that fails (a full disk), leaves
the previous checkpoint intact. The named fault points (avatar_core.faults) mark where the fault
suite kills a save: between its files and between the renames that publish it.

A run checkpoint of several processes keeps one trainer state (RNG streams, replay buffer,
difficulty tracker, optimiser) per process: process r writes `state/rank<r>/` (process 0 writes
`state/` itself, the layout of a single-process run). Weights are written once by process 0 in
replicated mode and as each process's own shards under FSDP2. With LoRA only the adapter
weights are stored. Resuming needs the number of processes the run was written with.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from avatar_core.faults import fault_point
from avatar_core.recipes.distributed import Distributed, local, optimizer_state_from_local

TENSOR_TAG = "__tensor__"


def flatten_state(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state into (tensors by key, JSON tree with tensor placeholders)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = local(node).detach().cpu().contiguous()  # a shard's own part
            return {TENSOR_TAG: path}
        if isinstance(node, dict):
            # JSON keys are strings: remember int keys (optimiser param indices) to restore them.
            return {"__dict__": [[k, walk(v, f"{path}.{k}")] for k, v in node.items()]}
        if isinstance(node, (list, tuple)):
            return {
                "__list__": [walk(v, f"{path}.{i}") for i, v in enumerate(node)],
                "tuple": isinstance(node, tuple),
            }
        if isinstance(node, (np.integer, np.floating)):
            return node.item()
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} at {path or '<root>'} in a checkpoint")

    return tensors, walk(obj, prefix or "s")


def unflatten_state(tensors: dict[str, torch.Tensor], tree: Any) -> Any:
    if isinstance(tree, dict):
        if TENSOR_TAG in tree:
            return tensors[tree[TENSOR_TAG]]
        if "__dict__" in tree:
            return {k: unflatten_state(tensors, v) for k, v in tree["__dict__"]}
        if "__list__" in tree:
            items = [unflatten_state(tensors, v) for v in tree["__list__"]]
            return tuple(items) if tree.get("tuple") else items
    return tree


def rng_state() -> dict[str, Any]:
    """Every random stream a recipe draws from, in a form flatten_state can store."""
    return {
        "python": list(random.getstate()[1]) + [random.getstate()[2]],
        "python_version": random.getstate()[0],
        "numpy": np.random.get_state()[1].astype(np.int64).tolist(),
        "numpy_pos": int(np.random.get_state()[2]),
        "numpy_gauss": [int(np.random.get_state()[3]), float(np.random.get_state()[4])],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((state["python_version"], tuple(int(v) for v in py[:-1]), py[-1]))
    has_gauss, cached = state["numpy_gauss"]
    np.random.set_state(
        ("MT19937", np.array(state["numpy"], dtype=np.uint32), int(state["numpy_pos"]), has_gauss, cached)
    )
    torch.set_rng_state(state["torch"])


def save_state(directory: str | Path, name: str, state: dict[str, Any]) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors, tree = flatten_state(state)
    tensor_path = directory / f"{name}.safetensors"
    fault_point("checkpoint.write", tensor_path)
    try:
        save_file(tensors, str(tensor_path))
    except SafetensorError as err:  # safetensors reports the OS error (a full disk) as text; name the file
        raise os_error(err, tensor_path) from None
    (directory / f"{name}.json").write_text(json.dumps(tree))


def os_error(err: Exception, path: Path) -> Exception:
    """An OSError naming `path` for an I/O failure safetensors reports as `... (os error N)`."""
    found = re.search(r"\(os error (\d+)\)", str(err))
    if not found:
        return err
    code = int(found.group(1))
    return OSError(code, os.strerror(code), str(path))


def load_state(directory: str | Path, name: str) -> dict[str, Any]:
    directory = Path(directory)
    tensor_path, tree_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    for path in (tensor_path, tree_path):
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file missing: {path}")
    try:
        tree = json.loads(tree_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"checkpoint file {tree_path} is corrupt: {err}") from None
    return unflatten_state(load_file(str(tensor_path)), tree)


def atomic_dir(target: str | Path) -> Path:
    """A fresh temporary sibling of `target`; pass it to `commit_dir` when fully written."""
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def recover_dir(target: str | Path) -> None:
    """Finish a swap that `commit_dir` was killed in the middle of: bring the previous copy back."""
    target = Path(target)
    old = target.with_name(target.name + ".old")
    if not target.exists() and old.exists():
        os.replace(old, target)


def commit_dir(tmp: Path, target: str | Path) -> None:
    """Swap a fully written temporary directory into place (the old one is removed after).

    Between the two renames the target is briefly absent; `recover_dir` restores the previous copy
    if the process dies exactly there."""
    target = Path(target)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    fault_point("commit.between_renames")
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (config sections, input checkpoint ids)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def directory_digest(
    directory: str | Path, suffixes: tuple[str, ...] | None = (".safetensors", ".json")
) -> str:
    """Digest of the files (of `suffixes`; all when None) in a checkpoint folder: identifies the
    checkpoint a stage starts from."""
    directory = Path(directory)
    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and (suffixes is None or p.suffix in suffixes)
    )
    return files_digest(directory, files)


def files_digest(root: str | Path, files: list[Path]) -> str:
    """Digest of `files` (under `root`, in the order given) by their paths relative to `root` and
    their content, so a copied or moved folder keeps its digest."""
    return fingerprint([(str(p.relative_to(root)), file_digest(p)) for p in files])


def rank_state_dir(state_dir: str | Path, rank: int) -> Path:
    """Where process `rank` keeps its part of a run checkpoint."""
    return Path(state_dir) if rank == 0 else Path(state_dir) / f"rank{rank}"


def _trainable_only(model: torch.nn.Module) -> bool:
    from avatar_core.models.lora import has_adapter

    return has_adapter(model)


def save_run(
    run_dir: str | Path,
    model: torch.nn.Module,
    trainer: dict[str, Any],
    buffer: Any = None,
    dist: Distributed | None = None,
) -> None:
    """One resumable checkpoint of a training run: weights, trainer state, and the replay buffer.

    Every process must call it (it synchronises them); see the module docstring for the layout.
    """
    dist = dist or Distributed()
    final = Path(run_dir) / "state"
    tmp = final.with_name("state.tmp")
    if dist.rank == 0:
        tmp = atomic_dir(final)
    dist.barrier()
    own = rank_state_dir(tmp, dist.rank)
    only_adapters = _trainable_only(model)
    if dist.rank == 0 or dist.sharded:
        weights = dist.model_state(model, only_adapters)  # cloned: shared storage cannot be saved
        save_state(own, "model", {"weights": weights})
    fault_point("checkpoint.model_saved")
    save_state(own, "trainer", {**trainer, "rng": rng_state(), "world_size": dist.world})
    fault_point("checkpoint.trainer_saved")
    if buffer is not None:
        buffer.save(own / "buffer")
    fault_point("checkpoint.files_saved")
    dist.barrier()
    if dist.rank == 0:
        commit_dir(tmp, final)
    dist.barrier()


def load_run(
    run_dir: str | Path, fp: str, dist: Distributed | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(weights, trainer state) of this process from the run's last checkpoint, if it was made
    with fingerprint `fp`; the trainer state's `state_dir` is where this process's buffer lies."""
    dist = dist or Distributed()
    state_dir = Path(run_dir) / "state"
    if dist.rank == 0:
        recover_dir(state_dir)
    dist.barrier()
    own = rank_state_dir(state_dir, dist.rank)
    if not (state_dir / "trainer.json").is_file():
        return None
    head = load_state(state_dir, "trainer")
    if head.get("fingerprint") != fp:
        return None
    written_by = int(head.get("world_size", 1))
    if written_by != dist.world:
        raise ValueError(
            f"{state_dir} was written by {written_by} process(es) but {dist.world} are running: resume "
            f"with distributed.num_processes: {written_by}, or delete {state_dir} to start the stage over"
        )
    trainer = head if dist.rank == 0 else load_state(own, "trainer")
    set_rng_state(trainer["rng"])
    weights_dir = own if dist.sharded else state_dir
    trainer["state_dir"] = str(own)
    return load_state(weights_dir, "model")["weights"], trainer


def restore_weights(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], dist: Distributed | None = None
) -> None:
    """Put the weights of `load_run` back into the live model (adapters only under LoRA)."""
    (dist or Distributed()).load_model_state(model, weights, _trainable_only(model))


def trainer_state(
    fp: str, optimizer: Any, scheduler: Any, sampler: np.random.Generator, **extra: Any
) -> dict:
    """What every training loop checkpoints besides the weights, plus its own `extra` entries."""
    return {
        "fingerprint": fp,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "sampler_rng": sampler.bit_generator.state,
        **extra,
    }


def restore_trainer(trainer: dict, optimizer: Any, scheduler: Any, sampler: np.random.Generator) -> None:
    """Put the state saved by `trainer_state` back into a freshly built optimiser, schedule and sampler."""
    optimizer.load_state_dict(optimizer_state_from_local(optimizer, trainer["optimizer"]))
    scheduler.load_state_dict(trainer["scheduler"])
    sampler.bit_generator.state = trainer["sampler_rng"]
