"""What every recipe needs: seeding, the samples of a stage, decoded clips, hints, checkpoints.

Recipes stay explicit loops; this module only holds the I/O they share so that SFT, RL and
evaluation read data, media and checkpoints the same way.
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
from avatar_core.data.media import BLANKING, Clip, MediaError, blank_clip, decode_clip, resolve_media_path
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


class ClipCache:
    """Decodes each clip once. `blank` names an evaluation control (`BLANKING`): `blank_media` gives black frames and silence of the same shapes, `blank_video` black
    frames only, `blank_audio` silence only; True means `blank_media`."""

    def __init__(self, cfg: AvatarConfig, root: str | Path | None = None, blank: bool | str = False) -> None:
        self.media = cfg.data.media
        self.root = Path(root) if root is not None else media_root(cfg)
        mode = "blank_media" if blank is True else blank or None
        if mode is not None and mode not in BLANKING:
            raise ValueError(f"unknown control {mode!r}; valid names: {', '.join(BLANKING)}")
        self.blank = BLANKING[mode] if mode else None  # (video, audio) to blank
        self._clips: dict[str, Clip | None] = {}

    def get(self, sample: Sample) -> Clip | None:
        if not sample.video:
            return None
        if sample.video not in self._clips:
            clip = decode_clip(resolve_media_path(self.root, sample.video), self.media)
            if self.blank is not None:
                clip = blank_clip(clip, *self.blank)
            self._clips[sample.video] = clip
        return self._clips[sample.video]

    def get_many(self, samples: list[Sample]) -> list[Clip | None]:
        return [self.get(s) for s in samples]


def decodable(samples: list[Sample], clips: ClipCache) -> tuple[list[Sample], list[dict[str, str]]]:
    """Split samples into those whose media decode and a report of those that do not."""
    good, bad = [], []
    for s in samples:
        try:
            clips.get(s)
            good.append(s)
        except MediaError as err:
            bad.append({"id": s.id, "video": s.video, "reason": str(err)})
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


def write_json(path: str | Path, obj: object) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
