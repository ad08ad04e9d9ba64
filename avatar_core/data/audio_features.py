"""Audio resampling and Whisper-style log-mel features, in numpy and librosa.

`log_mel` reproduces what `transformers.WhisperFeatureExtractor` computes for a waveform that is
not padded to 30 s: a 400-point periodic Hann STFT with hop 160 (reflect padding, centred),
power spectrum, a Slaney mel filter bank from 0 to 8 kHz, log10 with a 1e-10 floor, the last
frame dropped, values clamped to (max - 8) and mapped by (x + 4) / 4. The model's processor
computes its own features; this one serves benchmarks, plots and checks (tests/data compares it
with the extractor). librosa is used for filters and the STFT only, never to open files (it
cannot read MP4 without an ffmpeg binary). Resampling calls soxr directly, the library behind
librosa's default `soxr_hq`: the same result, without the ~4 s that librosa's first `resample`
call spends loading its lazy modules in every process (measured here).
"""

from __future__ import annotations

import librosa
import numpy as np
import soxr

WHISPER_N_FFT = 400
WHISPER_HOP = 160
WHISPER_FMAX = 8000.0


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample mono `wave` [N] from `orig_rate` to `target_rate` (soxr, high quality), float32."""
    if orig_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    wave = np.asarray(wave, dtype=np.float32)
    if orig_rate == target_rate:
        return wave
    return soxr.resample(wave, orig_rate, target_rate, quality="HQ").astype(np.float32)


def log_mel(audio: np.ndarray, sample_rate: int = 16000, n_mels: int = 128) -> np.ndarray:
    """Log-mel features [n_mels, frames] float32 like Whisper's extractor (frames = N // 160)."""
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"audio must be mono [N], got shape {wave.shape}")
    if wave.size <= WHISPER_N_FFT // 2:
        raise ValueError(f"audio of {wave.size} samples is too short for a {WHISPER_N_FFT}-point STFT")
    spectrum = librosa.stft(
        wave, n_fft=WHISPER_N_FFT, hop_length=WHISPER_HOP, window="hann", center=True, pad_mode="reflect"
    )  # [n_fft // 2 + 1, frames + 1]
    power = np.abs(spectrum).astype(np.float64) ** 2  # [F, frames + 1]
    filters = librosa.filters.mel(
        sr=sample_rate,
        n_fft=WHISPER_N_FFT,
        n_mels=n_mels,
        fmin=0.0,
        fmax=WHISPER_FMAX,
        htk=False,
        norm="slaney",
    )  # [n_mels, F]
    mel = filters.astype(np.float64) @ power  # [n_mels, frames + 1]
    log_spec = np.log10(np.maximum(mel, 1e-10))[:, :-1]  # [n_mels, frames]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)
