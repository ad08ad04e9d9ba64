"""Drawing and sound primitives of the synthetic clips: squares on a canvas, tones, cue timing.

`clip_spec` fixes the geometry and timing shared by a data set, including the "slots": the frames
a uniform sampler of `n_frames` picks (`sample_frame_indices`), on which every visual cue is
centred. A cue covers `2 * half_width + 1` frames, with at least one unlit frame between cues on
neighbouring slots; a tone that goes with a cue covers exactly the cue's frames. Sizes are given
for a 56-pixel frame and scaled to `frame_size`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatar_core.data.media import sample_frame_indices

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 255),
    "yellow": (240, 220, 40),
    "magenta": (220, 60, 220),
    "cyan": (40, 210, 220),
}
# The four quadrants of the frame, in option order. Each is exactly one merged vision token of a
# 56-pixel frame (28x28 pixels), so an object in a quadrant never straddles two tokens.
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")
AUDIO_TOKEN_S = 0.04  # one audio token of the Whisper-style encoder covers 40 ms


@dataclass
class Rendered:
    """One rendered sample: media plus the text fields of its `Sample`."""

    frames: np.ndarray  # [T, H, W, 3] uint8
    audio: np.ndarray  # [N] float32
    answer: str
    choices: list[str]
    reasoning: str
    facts: dict[str, Any]
    layout: dict[str, Any] = field(default_factory=dict)  # geometry and timing, for tests and debugging


@dataclass(frozen=True)
class Style:
    """How visible the cues are at one difficulty level (sizes in pixels of a 56-pixel frame)."""

    side: int  # square side
    grow: int  # extra pixels on each side while lit
    dim: float  # colour intensity when off
    lit: float  # colour intensity when on
    background: float  # grey level of the background
    pixel_noise: float  # std of Gaussian pixel noise
    tone_amp: float  # amplitude of tones and beeps
    audio_noise: float  # std of Gaussian audio noise


STYLES = {
    "easy": Style(
        side=16, grow=2, dim=0.25, lit=1.0, background=16, pixel_noise=0, tone_amp=0.5, audio_noise=0
    ),
    "hard": Style(
        side=10, grow=1, dim=0.5, lit=0.85, background=64, pixel_noise=12, tone_amp=0.2, audio_noise=0.04
    ),
}


@dataclass(frozen=True)
class ClipSpec:
    """Geometry and timing shared by every clip of a data set."""

    size: int  # frame width and height
    fps: int
    n_video_frames: int
    sample_rate: int
    n_samples: int  # audio length
    slots: tuple[int, ...]  # the frames the model samples: cues are centred on them
    half_width: int  # a cue covers slot - half_width .. slot + half_width
    patterned_glow: bool = False  # a sync flash lights the scene through its quadrant's stripes

    @property
    def scale(self) -> float:
        return self.size / 56

    def window(self, slot: int) -> range:
        return range(max(0, slot - self.half_width), min(self.n_video_frames, slot + self.half_width + 1))


def clip_spec(
    size: int, fps: int, duration_s: float, sample_rate: int, n_frames: int, patterned_glow: bool = False
) -> ClipSpec:
    if n_frames < 4:
        raise ValueError(f"the synthetic tasks need n_frames >= 4 sampled frames, got {n_frames}")
    n_video = round(fps * duration_s)
    slots = sample_frame_indices(n_video, n_frames)
    min_gap = int(np.diff(slots).min()) if n_video >= n_frames else 0
    if min_gap < 2:  # neighbouring cues need an unlit frame between them
        raise ValueError(
            f"a clip of {n_video} frames (fps {fps} x {duration_s}s) is too short for {n_frames} separate cues; "
            f"need at least {2 * n_frames - 1} frames"
        )
    return ClipSpec(
        size,
        fps,
        n_video,
        sample_rate,
        round(duration_s * sample_rate),
        tuple(int(s) for s in slots),
        (min_gap - 2) // 2,
        patterned_glow,
    )


def canvas(spec: ClipSpec, style: Style) -> np.ndarray:
    return np.full((spec.n_video_frames, spec.size, spec.size, 3), style.background, dtype=np.float32)


def square_box(cy: float, cx: float, side: int, spec: ClipSpec) -> tuple[int, int, int, int]:
    half = side * spec.scale / 2
    y0, x0 = int(round(cy - half)), int(round(cx - half))
    size = int(round(side * spec.scale))
    return max(0, y0), max(0, x0), min(spec.size, y0 + size), min(spec.size, x0 + size)


def draw_square(
    frames: np.ndarray,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    style: Style,
    lit_frames: set[int],
    spec: ClipSpec,
) -> None:
    grow = int(round(style.grow * spec.scale))
    y0, x0, y1, x1 = box
    rgb = np.asarray(colour, dtype=np.float32)  # [3]
    for t in range(frames.shape[0]):
        if t in lit_frames:
            frames[t, max(0, y0 - grow) : y1 + grow, max(0, x0 - grow) : x1 + grow] = rgb * style.lit
        else:
            frames[t, y0:y1, x0:x1] = rgb * style.dim


def finish_frames(frames: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    if style.pixel_noise:
        frames = frames + rng.normal(0.0, style.pixel_noise, frames.shape[:3])[..., None]  # grey noise
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def lit_frames(spec: ClipSpec, slots: list[int]) -> set[int]:
    return {t for slot in slots for t in spec.window(slot)}


def tone(audio: np.ndarray, start_s: float, end_s: float, freq: float, amp: float, rate: int) -> None:
    start, end = round(start_s * rate), min(len(audio), round(end_s * rate))
    t = np.arange(end - start) / rate  # [n]
    ramp = min(len(t) // 2, round(0.005 * rate))  # 5 ms fades: no clicks that would sound like extra beeps
    envelope = np.ones(len(t), dtype=np.float32)  # [n]
    if ramp:
        envelope[:ramp] = np.linspace(0, 1, ramp)
        envelope[-ramp:] = np.linspace(1, 0, ramp)
    audio[start:end] += (amp * envelope * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def finish_audio(audio: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    if style.audio_noise:
        audio = audio + rng.normal(0.0, style.audio_noise, audio.shape).astype(np.float32)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def slot_seconds(spec: ClipSpec, slot: int) -> tuple[float, float]:
    frames = spec.window(slot)
    return frames.start / spec.fps, frames.stop / spec.fps


def partition_slots(rng: np.random.Generator, slots: tuple[int, ...], groups: int) -> list[list[int]]:
    """Split the slots into `groups` disjoint non-empty sets, at random."""
    order = [slots[i] for i in rng.permutation(len(slots))]
    cuts = sorted(rng.choice(np.arange(1, len(slots)), size=groups - 1, replace=False).tolist())
    return [sorted(order[a:b]) for a, b in zip([0, *cuts], [*cuts, len(slots)], strict=True)]


def quadrant_centres(spec: ClipSpec) -> dict[str, tuple[float, float]]:
    s = spec.size
    return {
        "top left": (s / 4, s / 4),
        "top right": (s / 4, 3 * s / 4),
        "bottom left": (3 * s / 4, s / 4),
        "bottom right": (3 * s / 4, 3 * s / 4),
    }


def quadrant_box(spec: ClipSpec, quadrant: str) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) of one quadrant of the frame."""
    half = spec.size // 2
    row, col = QUADRANTS.index(quadrant) // 2, QUADRANTS.index(quadrant) % 2
    return row * half, col * half, (row + 1) * half, (col + 1) * half
