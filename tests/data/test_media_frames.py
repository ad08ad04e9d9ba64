"""Frame sampling, resizing and decoding of real MP4 files with both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import N_VIDEO, bar_width, tone_audio
from hypothesis import given, settings
from hypothesis import strategies as st

from avatar_core.data.datasets_io import load_split
from avatar_core.data.media import (
    FRAME_BACKENDS,
    fit_frame_size,
    load_clip,
    load_frames,
    probe_media,
    sample_frame_indices,
)
from avatar_core.data.mp4 import write_mp4


def test_sample_frame_indices_hand_worked():
    assert sample_frame_indices(16, 4).tolist() == [0, 5, 10, 15]
    assert sample_frame_indices(16, 8).tolist() == [0, 2, 4, 6, 9, 11, 13, 15]
    assert sample_frame_indices(10, 1).tolist() == [0]
    assert sample_frame_indices(3, 5).tolist() == [0, 0, 1, 2, 2]  # fewer frames than asked: repeats
    assert sample_frame_indices(1, 3).tolist() == [0, 0, 0]


@pytest.mark.parametrize("args", [(0, 4), (16, 0), (-1, 2)])
def test_sample_frame_indices_rejects_empty(args):
    with pytest.raises(ValueError, match="must be >= 1"):
        sample_frame_indices(*args)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 64))
def test_sample_frame_indices_uniform(total, n):
    indices = sample_frame_indices(total, n)
    assert len(indices) == n and indices[0] == 0
    assert np.all(np.diff(indices) >= 0) and indices.max() <= total - 1
    if n > 1:
        assert indices[-1] == total - 1
        step = (total - 1) / (n - 1)
        assert np.all(np.abs(indices - np.arange(n) * step) <= 0.5 + 1e-9)  # nearest to the uniform grid


def test_fit_frame_size_hand_worked():
    assert fit_frame_size(56, 56, 56 * 56) == (56, 56)
    assert fit_frame_size(84, 112, 56 * 56) == (28, 56)  # scale 0.577: 48.5 x 64.7 floor to 28 x 56
    assert fit_frame_size(84, 112, 10_000) == (84, 112)  # fits: only rounded
    assert fit_frame_size(720, 1280, 448 * 448) == (336, 588)
    assert fit_frame_size(10, 10, 28 * 28) == (28, 28)  # tiny frames grow to one patch
    assert fit_frame_size(28, 10_000, 28 * 28 * 4) == (28, 112)  # extreme aspect: long side trimmed


def test_fit_frame_size_rejects_budget_below_one_patch():
    with pytest.raises(ValueError, match="max_pixels must be >= 784"):
        fit_frame_size(56, 56, 700)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000), st.integers(784, 1_000_000))
def test_fit_frame_size_constraints(height, width, max_pixels):
    h, w = fit_frame_size(height, width, max_pixels)
    assert h % 28 == 0 and w % 28 == 0 and h >= 28 and w >= 28
    assert h * w <= max_pixels
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    if height * scale >= 28 and width * scale >= 28:
        # aspect kept: each side within one patch of the (budget-)scaled side
        assert abs(h - height * scale) < 28 and abs(w - width * scale) < 28


def test_probe_reads_container(media_dir):
    info = probe_media(media_dir / "indexed.mp4")
    assert (info.width, info.height, info.n_frames, info.fps, info.has_audio) == (56, 56, 16, 8.0, True)
    assert info.duration_s == pytest.approx(2.0)
    assert not probe_media(media_dir / "silent_track_missing.mp4").has_audio


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_all_frames_in_order(media_dir, backend):
    frames = load_frames(media_dir / "indexed.mp4", N_VIDEO, 56 * 56, backend)
    assert frames.shape == (N_VIDEO, 56, 56, 3) and frames.dtype == np.uint8
    assert [bar_width(f) for f in frames] == [3 * (i + 1) for i in range(N_VIDEO)]
    grey = frames[:, 42, 30, :].mean(axis=-1)  # [T] lower half: level 15 * i
    assert np.allclose(grey, 15 * np.arange(N_VIDEO), atol=3)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_sampled_frames_are_the_uniform_indices(media_dir, backend):
    frames = load_frames(media_dir / "indexed.mp4", 4, 56 * 56, backend)
    assert [bar_width(f) // 3 - 1 for f in frames] == [0, 5, 10, 15]


def test_backends_pixel_identical(media_dir, tiny_synthetic):
    """Measured: decord and PyAV both convert with swscale and agree exactly on H.264 clips."""
    paths = [media_dir / "indexed.mp4", media_dir / "wide.mp4"]
    paths += [tiny_synthetic / s.video for s in load_split(tiny_synthetic, "test")]
    for path in paths:
        for n in (4, 8):
            a = load_frames(path, n, 56 * 56, "decord")
            b = load_frames(path, n, 56 * 56, "pyav")
            assert a.shape == b.shape
            assert np.array_equal(a, b), f"{path}: max difference {np.abs(a.astype(int) - b).max()}"


def test_resize_keeps_aspect_and_budget(media_dir):
    clip = load_clip(media_dir / "wide.mp4", n_frames=2, max_pixels=56 * 56)
    assert clip.frames.shape == (2, 28, 56, 3)  # 84x112 -> 48.5x64.7 -> (28, 56): floors of the scaled sides
    big = load_clip(media_dir / "wide.mp4", n_frames=2, max_pixels=112 * 112)
    assert big.frames.shape == (2, 84, 112, 3)  # fits: untouched
    assert [bar_width(f) for f in big.frames] == [3, 12]  # frames 0 and 3 of 4


def test_unknown_backend_lists_valid_names(media_dir):
    with pytest.raises(KeyError, match="unknown video backend 'opencv'; valid names: decord, pyav"):
        load_frames(media_dir / "indexed.mp4", 4, 56 * 56, "opencv")
    assert FRAME_BACKENDS.names() == ["decord", "pyav"]


def _textured_clip(path, height: int, width: int, n: int = 6) -> None:
    """Smooth colour gradients that move: detail at every scale, no flat areas."""
    ys, xs = np.mgrid[0:height, 0:width]  # [H, W] each
    frames = [
        np.stack([(xs * 2 + 9 * t) % 256, (ys * 3 + 5 * t) % 256, ((xs + ys) + 17 * t) % 256], axis=-1)
        for t in range(n)
    ]
    write_mp4(path, np.asarray(frames, dtype=np.uint8), tone_audio(n / 8), fps=8, sample_rate=16000)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_decoder_scaling_matches_a_bicubic_resize(tmp_path, backend):
    """Frames are scaled by the decoder, not by PIL: same size, and close to what a PIL bicubic
    resize of the native frames gives (mean difference about one grey level, measured)."""
    from PIL import Image

    path = tmp_path / "textured.mp4"
    _textured_clip(path, 168, 224)
    native = load_frames(path, 3, 10**6, backend)  # fits: decoded at its own size
    scaled = load_frames(path, 3, 112 * 84, backend)  # 168x224 -> (84, 112)
    assert native.shape == (3, 168, 224, 3) and scaled.shape == (3, 84, 112, 3)
    reference = np.stack(
        [np.asarray(Image.fromarray(f).resize((112, 84), Image.Resampling.BICUBIC)) for f in native]
    )
    difference = np.abs(scaled.astype(int) - reference)  # [3, 84, 112, 3]
    assert difference.mean() < 3.0, (
        f"{backend}: mean difference {difference.mean():.2f} from a bicubic resize"
    )


def test_backends_agree_closely_when_scaling(tmp_path):
    path = tmp_path / "textured.mp4"
    _textured_clip(path, 360, 640)
    a = load_frames(path, 4, 200_704, "decord")  # 360x640 -> 336x588
    b = load_frames(path, 4, 200_704, "pyav")
    assert a.shape == b.shape == (4, 336, 588, 3)
    assert np.abs(a.astype(int) - b).mean() < 1.0
