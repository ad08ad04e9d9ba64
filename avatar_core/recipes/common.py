"""What every recipe needs: seeding, the samples of a stage, their clips, hints, checkpoints.

Recipes stay explicit loops; this module only holds the I/O they share so that SFT, RL and
evaluation read data, media and checkpoints the same way. Clips of the ingested data set come
from the media store ingest wrote, through a bounded cache (avatar_core/data/loader.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def load_samples(
    cfg: AvatarConfig, split: str, tasks: Iterable[str] | None = None, key: str = "tasks"
) -> list[Sample]:
    """Samples of one split, restricted to `tasks` (task families) when given.

    `key` is the params key the tasks came from (e.g. rl.s1.tasks): a task the data set does not
    hold is reported under it, since for ingested data only the data set knows its task names."""
    from avatar_core.data.ingest import load_split

    samples = load_split(cfg.paths.data_dir, split)
    wanted = set(tasks or [])
    if wanted:
        known = {s.task for s in samples}
        missing = wanted - known
        if missing:
            raise ValueError(
                f"{key}: task(s) {', '.join(sorted(missing))} have no samples in split {split!r} of "
                f"{cfg.paths.data_dir} (tasks present: {', '.join(sorted(known)) or 'none'})"
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


def decodable(
    samples: list[Sample], clips: ClipLoader, reported: set[str] | None = None
) -> tuple[list[Sample], list[dict[str, str]]]:
    """Split samples into those whose media the store holds and a report of those it does not.
    Ingest already decoded every clip (and rejected those that failed), so nothing is read here:
    a stage starts in the same time whatever the data set size. A stage that checks overlapping
    lists (SFT's phases, training and validation) passes one `reported` set, so each skipped
    sample is logged once."""
    good, bad = clips.check(samples)
    for b in bad:
        if reported is None or b["id"] not in reported:
            log.warning("skipping sample %s: %s", b["id"], b["reason"])
        if reported is not None:
            reported.add(b["id"])
    return good, bad


def load_hints(cfg: AvatarConfig, samples: list[Sample]) -> dict[str, str]:
    """Hint per prompt id: the hint cache of the hints stage first, else the sample's own hint."""
    hints = {s.id: s.hint for s in samples if s.hint}
    for row in read_hint_cache(Path(cfg.paths.hints_dir) / "hints.jsonl").values():
        hints[str(row["id"])] = str(row["hint"])
    return hints


def read_hint_cache(path: Path) -> dict[str, dict]:
    """Rows of the hint cache by prompt id ({} when there is none); a bad line is a ValueError
    naming `file:line`, since the cache is the pipeline's own file and a hand edit broke it."""
    from avatar_core.data.schema import parse_json_line

    cache: dict[str, dict] = {}
    if not path.is_file():
        return cache
    with path.open("rb") as handle:
        for n, raw in enumerate(handle, 1):
            row, problem = parse_json_line(raw)
            if row is None and not problem:
                continue
            if not problem and not (isinstance(row, dict) and "id" in row and "hint" in row):
                problem = "a hint record is a JSON object with keys id and hint"
            if problem:
                raise ValueError(f"{path}:{n}: malformed hint record ({problem})")
            cache[str(row["id"])] = row
    return cache


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


def strict_json(obj: Any) -> Any:
    """`obj` with every NaN or infinite float replaced by None: strict JSON has neither, and a
    metrics file that DVC or another language's JSON reader cannot read is a silent loss."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to a temporary sibling and rename it over `path` (readers see old or new)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | Path, obj: object) -> None:
    """`obj` as strict JSON (NaN and infinities become null), replacing `path` atomically."""
    write_atomic(path, json.dumps(strict_json(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")
