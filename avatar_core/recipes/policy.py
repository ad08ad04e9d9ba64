"""Which policy a stage starts from and what it leaves behind, with LoRA on or off.

Without LoRA a stage writes a full checkpoint (safetensors) and the next stage loads it.

With `model.lora.enabled` a stage starts from its predecessor's policy with every earlier adapter
merged into the weights, adds one fresh adapter and trains only that (models/lora.py); the frozen
weights under the adapter are the stage's starting policy, so RL's KL reference is the same
model with the adapter off. The stage's folder holds adapters, not weights:

    <stage>/model/lora_chain.json        {"base_stage": "base", "adapters": ["sft", "s1"], ...}
    <stage>/model/adapters/sft/           adapter_config.json + adapter_model.safetensors
    <stage>/model/adapters/s1/
    <stage>/model/merged/                 only with model.lora.merged_export: a plain checkpoint

`base_stage` names the last stage that wrote full weights ("base": the model of params.yaml);
loading the stage merges the listed adapters into it in order. Earlier adapters are copied into
every later stage's folder (they are small), so a stage folder plus the base is self-contained.

Also here: `stage_identity`, what a stage's fingerprint must include about the model (its
identity, dtype, kind, LoRA settings), the preprocessor (media settings, which pixel budget
wins), the data set it trains on and the processes it runs on.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from avatar_core.config import AvatarConfig
from avatar_core.recipes import checkpoint as ckpt
from avatar_core.recipes.common import stage_model_dir

log = logging.getLogger(__name__)

CHAIN_FILE = "lora_chain.json"
ADAPTERS_DIR = "adapters"
MERGED_DIR = "merged"


def base_location(cfg: AvatarConfig) -> str:
    """The base model: the folder `avatar ingest` built for 'tiny', else model.name_or_path."""
    if cfg.model.name_or_path == "tiny":
        return str(stage_model_dir(cfg, "base"))
    return cfg.model.name_or_path


def read_chain(directory: str | Path) -> dict[str, Any] | None:
    """The adapter chain of a stage folder, or None for a full checkpoint."""
    path = Path(directory) / CHAIN_FILE
    if not path.is_file():
        return None
    try:
        chain = json.loads(path.read_text())
        base, adapters = str(chain["base_stage"]), [str(a) for a in chain["adapters"]]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a valid adapter chain ({err})") from None
    return {**chain, "base_stage": base, "adapters": adapters}


def _load_full(cfg: AvatarConfig, location: str):
    from avatar_core.models.loading import load_policy

    return load_policy(
        location,
        kind=cfg.model.kind,
        dtype=cfg.model.dtype,
        trust_remote_code=cfg.model.trust_remote_code,
        max_pixels=cfg.data.media.max_pixels,
        preprocessor=cfg.model.preprocessor,
    )


def load_stage_policy(cfg: AvatarConfig, stage: str):
    """The policy a stage wrote, as plain weights (adapters of a LoRA chain merged in)."""
    directory = stage_model_dir(cfg, stage)
    if stage == "base":
        if cfg.model.name_or_path == "tiny" and not directory.is_dir():
            raise FileNotFoundError(f"no base model at {directory}: run `avatar ingest` first")
        return _load_full(cfg, base_location(cfg))
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no checkpoint for stage {stage!r} at {directory}: run `avatar {stage}` first"
        )
    chain = read_chain(directory)
    if chain is None:
        bundle = _load_full(cfg, str(directory))
        bundle.lineage = {"base_stage": stage, "adapters": []}
        return bundle
    if chain["base_stage"] == stage:
        raise ValueError(f"{directory / CHAIN_FILE}: a stage cannot be its own base")
    from avatar_core.models.lora import merge_adapters

    bundle = load_stage_policy(cfg, chain["base_stage"])
    folders = [directory / ADAPTERS_DIR / name for name in chain["adapters"]]
    bundle.model = merge_adapters(bundle.model, folders)
    bundle.lineage = {
        "base_stage": chain["base_stage"],
        "adapters": list(zip(chain["adapters"], folders, strict=True)),
    }
    log.info("stage %s: %s with adapters %s merged", stage, chain["base_stage"], ", ".join(chain["adapters"]))
    return bundle


def load_trainable_policy(cfg: AvatarConfig, start_stage: str, dist: Any = None):
    """The policy a training stage starts from; with LoRA on, a fresh adapter is its only trainable part.

    `dist` (recipes/distributed.py) places it on its device and shards it when configured.
    """
    bundle = load_stage_policy(cfg, start_stage)
    if cfg.model.gradient_checkpointing:
        # Non-reentrant: works with frozen inputs (LoRA) and under FSDP2.
        bundle.unwrapped().gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    if cfg.model.lora.enabled:
        from avatar_core.models.lora import add_adapter

        bundle.model = add_adapter(bundle.model, cfg.model.lora)
        trainable = sum(p.numel() for p in bundle.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in bundle.model.parameters())
        log.info(
            "LoRA r=%d: %d of %d parameters train (%.2f%%)",
            cfg.model.lora.r,
            trainable,
            total,
            100 * trainable / total,
        )
    if dist is not None:
        dist.prepare(bundle)
    return bundle


def reference_policy(cfg: AvatarConfig, bundle: Any, start_stage: str, dist: Any = None):
    """RL's frozen reference: the policy with its adapter off (LoRA), else a second frozen copy."""
    from avatar_core.models.lora import has_adapter, reference_view

    if has_adapter(bundle.model):
        return reference_view(bundle)
    ref = load_stage_policy(cfg, start_stage)
    ref.model.eval().requires_grad_(False)
    if dist is not None:
        dist.prepare(ref, trainable=False)
    return ref


def save_stage_policy(
    cfg: AvatarConfig, bundle: Any, out_dir: str | Path, stage: str, state_dict: dict | None = None
) -> None:
    """Write what a stage leaves: its adapter chain (LoRA) or full weights, tokenizer, processor.

    `state_dict`: the full (unsharded) trainable state when the live model is sharded.
    """
    from avatar_core.models.loading import save_policy
    from avatar_core.models.lora import has_adapter, save_adapter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not has_adapter(bundle.model):
        save_policy(bundle, out, state_dict=state_dict)
        return
    names = []
    for name, folder in bundle.lineage["adapters"]:
        shutil.copytree(folder, out / ADAPTERS_DIR / name)
        names.append(name)
    save_adapter(bundle.model, out / ADAPTERS_DIR / stage, state_dict=state_dict)
    chain = {
        "base_stage": bundle.lineage["base_stage"],
        "adapters": [*names, stage],
        "base_model": cfg.model.name_or_path,
        "lora": cfg.model.lora.model_dump(mode="json"),
    }
    (out / CHAIN_FILE).write_text(json.dumps(chain, indent=2) + "\n")
    bundle.tokenizer.save_pretrained(out)
    if bundle.processor is not None:
        bundle.processor.save_pretrained(out)
    if cfg.model.lora.merged_export:
        export_merged(cfg, chain, out, out / MERGED_DIR)


def export_merged(cfg: AvatarConfig, chain: dict[str, Any], stage_dir: Path, target: Path) -> None:
    """A plain checkpoint of a LoRA stage: its base with every adapter of the chain merged."""
    from avatar_core.models.loading import save_policy
    from avatar_core.models.lora import merge_adapters

    bundle = load_stage_policy(cfg, chain["base_stage"])
    bundle.model = merge_adapters(bundle.model, [stage_dir / ADAPTERS_DIR / a for a in chain["adapters"]])
    save_policy(bundle, target)
    log.info("merged export of %s written to %s", ", ".join(chain["adapters"]), target)


# --------------------------------------------------------------------------- fingerprints


def checkpoint_identity(location: str) -> str:
    """What identifies a base model: a hub snapshot's commit, or a local folder's content.

    A hub name resolves to the commit of its cached snapshot (exact, and free); a local folder
    is hashed file by file, weights included (about 15 s for a 7B checkpoint, once per stage
    start), so a different model saved under the same path is a different input. A hub name
    with no local copy is identified by its name.
    """
    folder = Path(location)
    if not folder.is_dir():
        try:
            from transformers.utils import cached_file

            snapshot = Path(cached_file(location, "config.json")).resolve().parent
        except OSError:
            return f"hub:{location}"
        return f"hub:{location}@{snapshot.name}"
    return ckpt.directory_digest(folder, suffixes=None)


def data_identity(data_dir: str | Path) -> str | None:
    """What identifies an ingested data set: its split files and its media store's index, which
    holds a CRC of every clip's decoded frames and audio, so a re-ingested or edited data set is a
    new input while the media themselves are not read. The split folders' state.json is left out:
    `datasets` writes a random fingerprint into it on every save. None before ingest."""
    from avatar_core.data.datasets_io import DATASET_DIR
    from avatar_core.data.store import STORE_DIR

    root = Path(data_dir)
    files = [p for p in sorted((root / DATASET_DIR).rglob("*")) if p.is_file() and p.name != "state.json"]
    files += [root / STORE_DIR / name for name in ("index.npz", "store.json")]
    files = [p for p in files if p.is_file()]
    if not files:
        return None
    return ckpt.files_digest(root, files)


def stage_identity(cfg: AvatarConfig, start_stage: str) -> dict[str, Any]:
    """Everything about the model, preprocessing, data and processes a stage's result depends on."""
    model = cfg.model.model_dump(mode="json")
    if cfg.model.name_or_path != "tiny":
        model.pop("tiny")
    start = stage_model_dir(cfg, start_stage)
    if start_stage == "base":
        weights = checkpoint_identity(base_location(cfg))
    else:
        weights = ckpt.directory_digest(start)
    return {
        "model": model,
        "weights": weights,
        "media": cfg.data.media.model_dump(mode="json"),
        "data": data_identity(cfg.paths.data_dir),
        "distributed": cfg.distributed.model_dump(mode="json", exclude={"main_process_port"}),
    }
