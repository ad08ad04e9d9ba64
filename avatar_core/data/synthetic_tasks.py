"""The four synthetic task families: frames, audio and the known answer of one sample.

Each family renders a clip from a seeded generator and a planned answer key, so the planner (in
synthetic.py) can balance answers exactly. The answer depends on the media only: every family
asks one fixed question, and multiple-choice options are a fixed list (colours, quadrants).

Sampling assumption: the model sees `n_frames` frames taken by `sample_frame_indices` (uniform,
first and last included). Visual cues (flashes) are centred on those sampled frames ("slots") and
last `2 * half_width + 1` frames, with at least one unlit frame between cues on neighbouring
slots, so a flash is both caught by the sampler and a separate flash in the full video. Beeps of
`count_beeps` lie on the 40 ms audio-token grid with gaps of at least 160 ms; the beeps of the
sync families cover exactly the target's flashes. A model sampling other frame counts still sees
every cue only if its sampled frames include the slots (e.g. 4 slots in a 16-frame clip are
frames 0, 5, 10, 15).

- count_flashes (s1, numeric, needs video): one square, bright on `count` slots, dim on the others
  (at least one dim slot); a flash also lights the whole scene (`FLASH_GLOW`), so the count is
  readable from overall brightness (measured: constant answers after 1000 SFT steps without it).
- count_beeps (s2, numeric, needs audio): 1-3 (easy) or 1-5 (hard) beeps of 240 or 160 ms; a square
  flashes a different number of times as a distractor.
- av_match (s2, mc, needs both) and localise (s3, mc, needs both): synthetic_sync.py.
- locate (s1, mc, needs video; not in the default list): one square on the sync scene, "where is
  it?", localise's last step on its own (synthetic_sync.py).
Hard samples use smaller, lower-contrast squares on a noisy background and quieter tones in noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from avatar_core.data.synthetic_scene import (
    AUDIO_TOKEN_S,
    PALETTE,
    QUADRANTS,
    STYLES,
    ClipSpec,
    Rendered,
    canvas,
    draw_square,
    finish_audio,
    finish_frames,
    lit_frames,
    square_box,
    tone,
)
from avatar_core.data.synthetic_sync import AV_COLOURS, render_av_match, render_localise, render_locate
from avatar_core.registry import Registry


@dataclass(frozen=True)
class TaskFamily:
    name: str
    stage: str
    answer_type: str
    question: str
    hint: str
    n_answers: Callable[[str, ClipSpec], int]  # size of the answer space at a difficulty
    render: Callable[[np.random.Generator, ClipSpec, str, int], Rendered]


TASKS: Registry[TaskFamily] = Registry("synthetic task")


# --------------------------------------------------------------------------- families


def _flash_counts(difficulty: str, spec: ClipSpec) -> list[int]:
    n = len(spec.slots)  # at least one slot stays dim
    return list(range(1, max(2, n // 2) + 1)) if difficulty == "easy" else list(range(1, n))


# Scene-wide brightening on flash frames (grey levels added to every pixel, before noise).
FLASH_GLOW = {"easy": 110.0, "hard": 70.0}


def _render_count_flashes(rng: np.random.Generator, spec: ClipSpec, difficulty: str, key: int) -> Rendered:
    style = STYLES[difficulty]
    count = _flash_counts(difficulty, spec)[key]
    colour_name = str(rng.choice(list(PALETTE)))
    margin = style.side * spec.scale
    cy, cx = rng.uniform(margin, spec.size - margin, size=2)
    box = square_box(cy, cx, style.side, spec)
    flash_slots = sorted(rng.choice(spec.slots, size=count, replace=False).tolist())
    frames = canvas(spec, style)
    lit = lit_frames(spec, flash_slots)
    draw_square(frames, box, PALETTE[colour_name], style, lit, spec)
    frames[sorted(lit)] += FLASH_GLOW[difficulty]  # [lit, H, W, 3]
    audio = np.zeros(spec.n_samples, dtype=np.float32)  # visual task: a silent track
    return Rendered(
        finish_frames(frames, style, rng),
        finish_audio(audio, style, rng),
        str(count),
        [],
        f"<think>The square flashes {count} times.</think><answer>{count}</answer>",
        {"count": count},
        {"boxes": [box], "flash_slots": flash_slots},
    )


def _beep_counts(difficulty: str, spec: ClipSpec) -> list[int]:
    return [1, 2, 3] if difficulty == "easy" else [1, 2, 3, 4, 5]


def _place_beeps(rng: np.random.Generator, count: int, beep: int, gap: int, cells: int) -> list[int]:
    """Start cells of `count` beeps of `beep` cells, at least `gap` cells apart, in cells 1..cells-2."""
    slack = (cells - 2) - count * beep - (count - 1) * gap
    if slack < 0:
        raise ValueError(f"{count} beeps do not fit in {cells * AUDIO_TOKEN_S:.2f}s of audio")
    extra = np.bincount(rng.integers(0, count + 1, size=slack), minlength=count + 1)  # slack per gap
    starts, cell = [], 1 + int(extra[0])
    for k in range(count):
        starts.append(cell)
        cell += beep + gap + int(extra[k + 1])
    return starts


def _render_count_beeps(rng: np.random.Generator, spec: ClipSpec, difficulty: str, key: int) -> Rendered:
    style = STYLES[difficulty]
    count = _beep_counts(difficulty, spec)[key]
    # 240 / 160 ms beeps (in 40 ms cells): long enough that the count shows in a tiny random audio
    # encoder's output; trained on this family alone, the tiny model reached 0.67 held-out after 300
    # SFT steps with these beeps and 0.54 with the former 160 / 120 ms ones.
    beep, gap = (6, 6) if difficulty == "easy" else (4, 4)
    cells = int(round(spec.n_samples / spec.sample_rate / AUDIO_TOKEN_S, 6))
    freq = rng.uniform(500, 1000)
    audio = np.zeros(spec.n_samples, dtype=np.float32)
    beeps = []
    for start in _place_beeps(rng, count, beep, gap, cells):
        span = (start * AUDIO_TOKEN_S, (start + beep) * AUDIO_TOKEN_S)
        tone(audio, *span, freq, style.tone_amp, spec.sample_rate)
        beeps.append(span)
    # distractor: a square flashing a different number of times
    flashes = int(rng.choice([d for d in range(1, len(spec.slots)) if d != count]))
    flash_slots = sorted(rng.choice(spec.slots, size=flashes, replace=False).tolist())
    margin = style.side * spec.scale
    box = square_box(*rng.uniform(margin, spec.size - margin, size=2), style.side, spec)
    frames = canvas(spec, style)
    draw_square(
        frames, box, PALETTE[str(rng.choice(list(PALETTE)))], style, lit_frames(spec, flash_slots), spec
    )
    return Rendered(
        finish_frames(frames, style, rng),
        finish_audio(audio, style, rng),
        str(count),
        [],
        f"<think>I hear {count} beeps; the flashes do not count.</think><answer>{count}</answer>",
        {"count": count},
        {"boxes": [box], "flash_slots": flash_slots, "beeps": beeps},
    )


def _register(family: TaskFamily) -> None:
    TASKS.register(family.name)(family)


_register(
    TaskFamily(
        "count_flashes",
        "s1",
        "numeric",
        "How many times does the coloured square flash?",
        "Compare the frames and count those in which the square is bright.",
        lambda d, spec: len(_flash_counts(d, spec)),
        _render_count_flashes,
    )
)
_register(
    TaskFamily(
        "av_match",
        "s2",
        "mc",
        "Coloured squares flash and beeps sound in time with one of them. Which colour makes the sound?",
        "Count the beeps, then find the square that flashes as many times and name its colour.",
        lambda d, spec: len(AV_COLOURS),
        render_av_match,
    )
)
_register(
    TaskFamily(
        "count_beeps",
        "s2",
        "numeric",
        "How many beeps do you hear?",
        "Listen and count the tones; the flashing square is only a distraction.",
        lambda d, spec: len(_beep_counts(d, spec)),
        _render_count_beeps,
    )
)
_register(
    TaskFamily(
        "localise",
        "s3",
        "mc",
        "Squares flash and beeps sound in time with one of them. Where is the square that makes the sound?",
        "Count the beeps, then find the square that flashes as many times and say where it is.",
        lambda d, spec: len(QUADRANTS),
        render_localise,
    )
)

_register(
    TaskFamily(
        "locate",
        "s1",
        "mc",
        "A square flashes. Where is the square?",
        "Find the square and say which quarter of the frame it is in.",
        lambda d, spec: len(QUADRANTS),
        render_locate,
    )
)


def facts_json(facts: dict[str, Any]) -> str:
    return json.dumps(facts, sort_keys=True)
