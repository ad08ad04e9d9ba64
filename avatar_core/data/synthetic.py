"""The embedded default data set: seeded synthetic audio-visual clips with known answers.

`generate_dataset` plans every sample first (task family, difficulty, answer), then renders each
clip (synthetic_tasks.py) and writes it as a real MP4 (H.264 + AAC, mp4.py), in worker processes
when asked. It stands in for the paper's training data (AVQA-style real videos), which cannot be
downloaded here; the task families mirror the curriculum: S1 visual counting, S2 audio-visual
matching and counting, S3 sound-source localisation (by audio-visual synchrony: the audio is
mono, so "where" is found by matching the beeps to the flashing square, not by stereo cues).

Honesty, by construction and checked in tests/data:
- every family asks one fixed question with one fixed list of options (colours, quadrants), so the
  question text carries no information about the answer;
- answers are balanced: within each (split, task, difficulty) the answer keys (option letters or
  counts) cycle through their range before being shuffled;
- `hard_fraction` of each family is hard (more objects or counts, smaller, lower-contrast cues in
  noise), the rest easy;
- cues are placed on the frames a uniform `n_frames` sampler picks (see synthetic_tasks.py).
Same seed and settings give the same bytes (the encoder is deterministic; each sample has its own
seed, so the worker count does not matter).
"""

from __future__ import annotations

import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from avatar_core.config import SyntheticConfig
from avatar_core.data.datasets_io import SPLITS, write_data_card, write_splits
from avatar_core.data.mp4 import write_mp4
from avatar_core.data.schema import Sample
from avatar_core.data.synthetic_scene import ClipSpec, clip_spec
from avatar_core.data.synthetic_tasks import TASKS, Rendered, facts_json

SOURCE = "synthetic"
MEDIA_DIR = "media"
DIFFICULTIES = ("easy", "hard")


@dataclass(frozen=True)
class PlannedSample:
    task: str
    split: str
    index: int  # position within (task, split)
    difficulty: str
    answer_key: int  # option index (mc) or index into the family's counts (numeric)

    @property
    def id(self) -> str:
        return f"{self.task}-{self.split}-{self.index:05d}"


def _seed_sequence(seed: int, split: str, task: str, *more: int) -> np.random.SeedSequence:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    # the task name, not its position in the list, keys the stream: reordering tasks changes nothing
    return np.random.SeedSequence([seed, SPLITS.index(split), zlib.crc32(task.encode()), *more])


def split_sizes(cfg: SyntheticConfig) -> dict[str, int]:
    return {"train": cfg.n_train, "validation": cfg.n_val, "test": cfg.n_test}


def spec_from_config(cfg: SyntheticConfig, n_frames: int) -> ClipSpec:
    return clip_spec(
        cfg.frame_size, cfg.fps, cfg.duration_s, cfg.sample_rate, n_frames, cfg.glow == "patterned"
    )


def plan_dataset(cfg: SyntheticConfig, seed: int, spec: ClipSpec) -> list[PlannedSample]:
    """Every sample of every split, with difficulty and answer balanced per (split, task)."""
    for task in cfg.all_tasks:
        TASKS.get(task)  # unknown names fail here, listing the valid ones
    plan: list[PlannedSample] = []
    for split, total in split_sizes(cfg).items():
        families = cfg.split_tasks(split)  # train-only families stay out of the test split
        per_task, extra = divmod(total, len(families))
        for position, task in enumerate(families):
            n = per_task + (position < extra)
            rng = np.random.default_rng(_seed_sequence(seed, split, task, 0))
            n_hard = round(cfg.hard_fraction * n)
            difficulty = np.array(["hard"] * n_hard + ["easy"] * (n - n_hard))
            rng.shuffle(difficulty)
            keys = np.zeros(n, dtype=np.int64)
            for level in DIFFICULTIES:
                where = np.flatnonzero(difficulty == level)
                cycle = np.arange(len(where)) % TASKS.get(task).n_answers(level, spec)
                rng.shuffle(cycle)
                keys[where] = cycle
            plan += [PlannedSample(task, split, i, str(difficulty[i]), int(keys[i])) for i in range(n)]
    return plan


def render_sample(planned: PlannedSample, spec: ClipSpec, seed: int) -> Rendered:
    """Render one planned sample (deterministic in `seed` and the plan entry)."""
    rng = np.random.default_rng(_seed_sequence(seed, planned.split, planned.task, 1, planned.index))
    return TASKS.get(planned.task).render(rng, spec, planned.difficulty, planned.answer_key)


def to_sample(planned: PlannedSample, rendered: Rendered) -> Sample:
    family = TASKS.get(planned.task)
    return Sample(
        id=planned.id,
        task=planned.task,
        question=family.question,
        answer=rendered.answer,
        answer_type=family.answer_type,  # type: ignore[arg-type]
        choices=rendered.choices,
        video=f"{MEDIA_DIR}/{planned.id}.mp4",
        has_audio=True,
        stage=family.stage,
        reasoning=rendered.reasoning,
        hint=family.hint,
        facts=facts_json(rendered.facts),
        difficulty=planned.difficulty,
        source=SOURCE,
    )


def _make(planned: PlannedSample, spec: ClipSpec, seed: int, out_dir: Path) -> Sample:
    rendered = render_sample(planned, spec, seed)
    sample = to_sample(planned, rendered)
    write_mp4(
        out_dir / sample.video, rendered.frames, rendered.audio, fps=spec.fps, sample_rate=spec.sample_rate
    )
    return sample


def generate_dataset(
    cfg: SyntheticConfig,
    out_dir: str | Path,
    seed: int,
    progress: bool = True,
    *,
    n_frames: int = 4,
    num_workers: int = 0,
) -> dict[str, int]:
    """Write `out_dir/media/*.mp4`, the Arrow splits in `out_dir/dataset` and the data card
    `out_dir/README.md`; return the number of samples per split. `n_frames` is the number of
    frames the model samples per clip (cues are placed on them); `num_workers` > 1 renders and
    encodes in that many processes."""
    out_dir = Path(out_dir)
    spec = spec_from_config(cfg, n_frames)
    plan = plan_dataset(cfg, seed, spec)
    for stale in (MEDIA_DIR, "dataset"):  # a smaller regeneration must not leave old clips behind
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    (out_dir / MEDIA_DIR).mkdir(parents=True, exist_ok=True)
    make = partial(_make, spec=spec, seed=seed, out_dir=out_dir)
    bar = partial(tqdm, total=len(plan), desc="synthetic clips", unit="clip", disable=not progress)
    if num_workers > 1:
        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            samples = list(bar(pool.map(make, plan, chunksize=8)))
    else:
        samples = list(bar(map(make, plan)))
    splits = {split: [s for p, s in zip(plan, samples, strict=True) if p.split == split] for split in SPLITS}
    write_splits(out_dir, splits)
    notes = [
        f"Generated by avatar_core.data.synthetic with seed {seed}: {cfg.frame_size}x{cfg.frame_size} px, "
        f"{cfg.fps} fps, {cfg.duration_s:g} s, {cfg.sample_rate} Hz mono AAC, H.264 video.",
        f"Tasks: {', '.join(cfg.tasks)}; hard fraction {cfg.hard_fraction:g}."
        + (f" Train and validation only: {', '.join(cfg.train_only_tasks)}." if cfg.train_only_tasks else ""),
        f"Cues sit on the {n_frames} frames a uniform sampler takes (frames {list(spec.slots)} of "
        f"{spec.n_video_frames}), each lasting {2 * spec.half_width + 1} frame(s); decode with "
        f"data.media.n_frames = {n_frames} to see every cue.",
        "Every family asks one fixed question; answers are balanced per split, task and difficulty.",
    ]
    write_data_card(out_dir, splits, "Synthetic audio-visual reasoning data", notes)
    return {split: len(samples) for split, samples in splits.items()}
