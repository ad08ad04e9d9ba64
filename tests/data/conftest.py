"""Real MP4 fixtures for the media, synthetic and ingestion tests (written once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar_core.config import SyntheticConfig
from avatar_core.data.mp4 import write_mp4
from avatar_core.data.synthetic import generate_dataset

FPS = 8
RATE = 16000
N_VIDEO = 16


def indexed_frames(n: int = N_VIDEO, height: int = 56, width: int = 56) -> np.ndarray:
    """Frame i shows a white bar 3 * (i + 1) pixels wide on the left and grey level 15 * i below it,
    so a decoded frame tells which index it is."""
    frames = np.zeros((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        frames[i, : height // 2, : 3 * (i + 1)] = 255
        frames[i, height // 2 :] = 15 * i
    return frames


def bar_width(frame: np.ndarray) -> int:
    """Width of the white bar in the top half of a decoded indexed frame."""
    row = frame[frame.shape[0] // 4, :, :].mean(axis=-1)  # [W]
    return int((row > 128).sum())


def tone_audio(
    seconds: float = 2.0, onset_s: float = 0.5, offset_s: float = 1.0, freq: float = 880.0
) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t) * ((t >= onset_s) & (t < offset_s))).astype(np.float32)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Hand-made clips: indexed frames with a tone, the same without audio, and a wide clip."""
    root = tmp_path_factory.mktemp("media")
    write_mp4(root / "indexed.mp4", indexed_frames(), tone_audio(), fps=FPS, sample_rate=RATE)
    write_mp4(root / "silent_track_missing.mp4", indexed_frames(), None, fps=FPS, sample_rate=RATE)
    write_mp4(root / "wide.mp4", indexed_frames(4, 84, 112), tone_audio(0.5), fps=FPS, sample_rate=RATE)
    return root


TINY = SyntheticConfig(n_train=16, n_val=4, n_test=8, hard_fraction=0.5)
TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A tiny generated data set (all four families, easy and hard), serial generation."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(TINY, root, TINY_SEED, progress=False, n_frames=4, num_workers=0)
    return root
