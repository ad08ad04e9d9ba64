"""Helpers for the model tests: a corpus for the tiny tokenizer, numpy clips, chat messages."""

from __future__ import annotations

import numpy as np

from avatar_core.data.media import Clip

CORPUS = [
    "How many beeps do you hear in the clip?",
    "<think>I count three flashes and two beeps.</think><answer>B</answer>",
    "Which coloured object makes the sound? A. red B. green C. blue D. yellow",
    "Where is the sound source? left right top bottom",
] * 10


def make_clip(
    n_frames: int = 4, size: int = 56, seconds: float = 2.0, seed: int = 0, tone_hz: float = 440.0
) -> Clip:
    """Random frames and a sine tone: enough media for the model code paths."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(n_frames, size, size, 3), dtype=np.uint8)
    t = np.arange(int(16000 * seconds), dtype=np.float32) / 16000
    audio = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
    return Clip(
        frames=frames, audio=audio, sample_rate=16000, audio_missing=False, duration_s=seconds, path=""
    )


def video_messages(question: str = "How many beeps do you hear?", with_video: bool = True) -> list[dict]:
    content: list[dict] = [{"type": "video"}] if with_video else []
    content.append({"type": "text", "text": question})
    return [{"role": "system", "content": "You can see and hear."}, {"role": "user", "content": content}]
