"""Audio extraction (PyAV), resampling, missing audio tracks and Whisper-style log-mel features."""

from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import RATE
from transformers import WhisperFeatureExtractor

from avatar_core.data.media import MediaError, load_audio, load_clip, log_mel


def _onset_offset(wave: np.ndarray, rate: int) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(wave) > 0.1)
    return loud[0] / rate, loud[-1] / rate


def test_audio_length_rate_and_tone_position(media_dir):
    wave = load_audio(media_dir / "indexed.mp4", RATE)
    assert wave.dtype == np.float32 and wave.shape == (2 * RATE,)  # AAC padding cut to the stream length
    onset, offset = _onset_offset(wave, RATE)
    assert onset == pytest.approx(0.5, abs=0.003) and offset == pytest.approx(1.0, abs=0.003)
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.05)


def test_audio_resampled_with_timing_kept(media_dir):
    wave = load_audio(media_dir / "indexed.mp4", 8000)
    assert wave.shape == (16000,)
    onset, offset = _onset_offset(wave, 8000)
    assert onset == pytest.approx(0.5, abs=0.003) and offset == pytest.approx(1.0, abs=0.003)


def test_stereo_is_averaged_to_mono(tmp_path):
    path = tmp_path / "stereo.mp4"
    left = (0.6 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=RATE)
        stream.layout = "stereo"
        video = container.add_stream("libx264", rate=8)
        video.width = video.height = 56
        video.pix_fmt = "yuv420p"
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(np.zeros((56, 56, 3), np.uint8), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        chunk = av.AudioFrame.from_ndarray(
            np.stack([left, np.zeros_like(left)]), format="fltp", layout="stereo"
        )
        chunk.sample_rate, chunk.pts = RATE, 0
        container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))
    wave = load_audio(path, RATE)
    assert wave.shape == (RATE,)
    assert np.abs(wave[2000:-2000]).max() == pytest.approx(0.3, abs=0.03)  # (left + right) / 2


def test_missing_audio_gives_silence_and_flag(media_dir):
    path = media_dir / "silent_track_missing.mp4"
    assert load_audio(path) is None
    clip = load_clip(path, n_frames=4, sample_rate=RATE)
    assert clip.audio_missing and clip.audio.shape == (2 * RATE,) and not clip.audio.any()
    assert clip.duration_s == pytest.approx(2.0) and clip.frames.shape == (4, 56, 56, 3)


def test_missing_audio_rejected_when_not_allowed(media_dir):
    path = media_dir / "silent_track_missing.mp4"
    with pytest.raises(MediaError, match="no audio stream") as info:
        load_clip(path, allow_missing_audio=False)
    assert info.value.path == str(path) and str(info.value).startswith(str(path))


def test_clip_with_audio(media_dir):
    clip = load_clip(media_dir / "indexed.mp4", n_frames=4, sample_rate=RATE, backend="pyav")
    assert not clip.audio_missing and clip.sample_rate == RATE and clip.audio.shape == (2 * RATE,)
    assert clip.path == str(media_dir / "indexed.mp4")


@pytest.mark.parametrize("seconds", [0.05, 1.0, 2.37])
def test_log_mel_matches_whisper_extractor(seconds):
    rng = np.random.default_rng(int(seconds * 100))
    t = np.arange(round(seconds * RATE)) / RATE
    wave = (0.3 * np.sin(2 * np.pi * 700 * t) + rng.normal(0, 0.05, t.shape)).astype(np.float32)
    extractor = WhisperFeatureExtractor(feature_size=128)
    reference = extractor(wave, sampling_rate=RATE, return_tensors="np", padding="longest").input_features[0]
    ours = log_mel(wave, RATE, n_mels=128)
    assert ours.shape == reference.shape == (128, len(wave) // 160)
    assert np.abs(ours - reference).max() < 1e-4


def test_log_mel_80_bins_and_bad_input():
    wave = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    reference = WhisperFeatureExtractor(feature_size=80)(
        wave, sampling_rate=RATE, return_tensors="np", padding="longest"
    ).input_features[0]
    assert np.abs(log_mel(wave, RATE, n_mels=80) - reference).max() < 1e-4
    with pytest.raises(ValueError, match="mono"):
        log_mel(np.zeros((2, 1000)))
    with pytest.raises(ValueError, match="too short"):
        log_mel(np.zeros(100))
