"""Shared fixtures: one tiny Omni policy, a shrunken InternVL3 judge folder and judge clips per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from models_helpers import CORPUS, make_clip

from avatar_core.config import TinyModelConfig
from avatar_core.models.loading import PolicyBundle, build_tiny_policy


@pytest.fixture(scope="session")
def tiny_bundle() -> PolicyBundle:
    return build_tiny_policy(TinyModelConfig(), CORPUS, seed=0)


@pytest.fixture(scope="session")
def tiny_internvl_dir(tmp_path_factory) -> Path:
    """A shrunken random-weight InternVL3 saved in the released native layout."""
    from avatar_core.models.internvl import build_tiny_internvl, save_internvl

    folder = tmp_path_factory.mktemp("tiny_internvl")
    save_internvl(build_tiny_internvl(seed=0), folder)
    return folder


@pytest.fixture(scope="session")
def judge_media(tmp_path_factory) -> Path:
    """A media root with two real MP4 clips (random frames, different tones)."""
    from avatar_core.data.mp4 import write_mp4

    root = tmp_path_factory.mktemp("judge_media")
    for name, seed in (("a.mp4", 1), ("b.mp4", 2)):
        clip = make_clip(n_frames=16, seconds=2.0, seed=seed, tone_hz=300.0 * seed)
        write_mp4(root / name, clip.frames, clip.audio, fps=8)
    return root
