"""What every recipe needs: seeding, the samples of a stage, their clips, hints, checkpoints.

Recipes stay explicit loops; this module only holds the I/O they share so that SFT, RL and
evaluation read data, media and checkpoints the same way. Clips of the ingested data set come
from the media store ingest wrote, through a bounded cache (avatar_core/data/loader.py).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from avatar_core.config import STAGES, AvatarConfig
from avatar_core.data.loader import ClipLoader, DecodeSource, StoreSource
from avatar_core.data.schema import Sample

log = logging.getLogger(__name__)

STAGE_ORDER = ("base", "sft", *STAGES)


def set_threads(num_threads: int) -> None:
    """Tiny models spend more time synchronising intra-op threads than computing: 1 is fastest.

    The limit covers torch and the BLAS numpy uses (audio features spin on idle BLAS threads too).
    """
    if num_threads > 0:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(num_threads)
        threadpool_limits(num_threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def load_samples(cfg: AvatarConfig, split: str, tasks: Iterable[str] | None = None) -> list[Sample]:
    """Samples of one split, restricted to `tasks` (task families) when given."""
    from avatar_core.data.ingest import load_split

    samples = load_split(cfg.paths.data_dir, split)
    wanted = set(tasks or [])
    if wanted:
        known = {s.task for s in samples}
        missing = wanted - known
        if missing:
            raise ValueError(
                f"tasks {sorted(missing)} have no samples in split {split!r} of {cfg.paths.data_dir} "
                f"(tasks present: {sorted(known)})"
            )
        samples = [s for s in samples if s.task in wanted]
    if not samples:
        raise ValueError(f"split {split!r} of {cfg.paths.data_dir} holds no samples")
    return samples


def media_root(cfg: AvatarConfig) -> Path:
    return Path(cfg.data.media_root or cfg.paths.data_dir)


def open_clips(cfg: AvatarConfig, root: str | Path | None = None) -> ClipLoader:
    """A bounded, prefetching reader of clips (`data.loader`): the ingested data set's clips come
    from its media store (built with the same `data.media` settings, else a clear error), clips
    under another `root` (an external benchmark's folder) are decoded when first read."""
    settings = cfg.data.loader
    if root is None:
        source = StoreSource(cfg.paths.data_dir, media_root(cfg), cfg.data.media, verify=settings.verify)
    else:
        source = DecodeSource(root, cfg.data.media)
    return ClipLoader(source, cache_bytes=int(settings.cache_mb * 2**20), threads=settings.threads)


def decodable(samples: list[Sample], clips: ClipLoader) -> tuple[list[Sample], list[dict[str, str]]]:
    """Split samples into those whose media the store holds and a report of those it does not.
    Ingest already decoded every clip (and rejected those that failed), so nothing is read here:
    a stage starts in the same time whatever the data set size."""
    good, bad = clips.check(samples)
    for b in bad:
        log.warning("skipping sample %s: %s", b["id"], b["reason"])
    return good, bad


def load_hints(cfg: AvatarConfig, samples: list[Sample]) -> dict[str, str]:
    """Hint per prompt id: the hint cache of the hints stage first, else the sample's own hint."""
    hints = {s.id: s.hint for s in samples if s.hint}
    cache = Path(cfg.paths.hints_dir) / "hints.jsonl"
    if cache.is_file():
        for n, line in enumerate(cache.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                hints[str(row["id"])] = str(row["hint"])
            except (json.JSONDecodeError, KeyError) as err:
                raise ValueError(f"{cache}:{n}: malformed hint record ({err})") from None
    return hints


def stage_model_dir(cfg: AvatarConfig, stage: str) -> Path:
    """Folder of the model a stage produced: base, sft, or an RL stage."""
    if stage == "base":
        return Path(cfg.paths.model_dir)
    if stage == "sft":
        return Path(cfg.paths.sft_dir) / "model"
    if stage in STAGES:
        return Path(cfg.paths.rl_dir) / stage / "model"
    raise ValueError(f"unknown stage {stage!r}; valid: {', '.join(STAGE_ORDER)}")


def previous_stage(stage: str) -> str:
    return STAGE_ORDER[STAGE_ORDER.index(stage) - 1]


def load_stage_policy(cfg: AvatarConfig, stage: str):
    """The policy a stage wrote (real checkpoints named in params.yaml load through the same call)."""
    from avatar_core.models.loading import load_policy

    directory = stage_model_dir(cfg, stage)
    if stage == "base" and cfg.model.name_or_path != "tiny":
        directory = Path(cfg.model.name_or_path)  # a hub name or local folder named in params.yaml
    elif not directory.is_dir():
        raise FileNotFoundError(
            f"no checkpoint for stage {stage!r} at {directory}: run `avatar {stage}` first"
        )
    lora = cfg.model.lora if cfg.model.lora.enabled and stage == "base" else None
    return load_policy(
        str(directory),
        kind=cfg.model.kind,
        dtype=cfg.model.dtype,
        lora=lora,
        trust_remote_code=cfg.model.trust_remote_code,
        max_pixels=cfg.data.media.max_pixels,
    )


def write_json(path: str | Path, obj: object) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
