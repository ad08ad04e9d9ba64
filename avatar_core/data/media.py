"""Decode clips into model inputs: uniformly sampled RGB frames and mono float32 audio.

`load_clip` probes the file with PyAV first (streams, size, length), rejects what it cannot or
must not decode with a `MediaError` naming the file and the reason, then decodes the sampled
frames with the chosen backend (decord seeks; PyAV decodes sequentially up to the last wanted
frame) and the audio with PyAV. Both backends use the frame count from the probe, so they pick
the same frame indices; at native size they were measured pixel-identical on H.264 clips (both
convert with FFmpeg's swscale), and tests/data checks it. Cut files are caught before decoding:
FFmpeg opens some truncated MP4s without complaint (a cut in the audio index just drops the audio
stream), so the probe walks the top-level ISO boxes, and in containers without a frame index
(Matroska) it compares the counted frames with the declared length. Frames are sized to multiples
of 28 within `max_pixels` (the Qwen2-VL patch x merge size; sides are floored when shrinking, as
Qwen2-VL's `smart_resize` does) by the decoder itself: swscale scales the YUV picture while
converting it to RGB, which adds a quarter of what a PIL bicubic resize of the decoded RGB frames
added (docs/benchmarks.md, 640x360 clips at the authors' budget: 0.058 against 0.106 CPU s per
clip; decoding at native size 0.044). Unlike Qwen2-VL's processor this is not a PIL bicubic
resize: decord's scale filter is about one grey level from it on average (of 255), and PyAV's
bilinear swscale a quarter of a grey level from decord (tests/data bounds both), so when frames
are scaled the backends agree closely but not exactly. torchvision is not used (no CPU build on
our package index).
Audio never goes through librosa's file loader: without an ffmpeg binary librosa cannot open
MP4, so PyAV decodes it and soxr (librosa's resampler) converts the rate.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from avatar_core.config import MediaConfig
from avatar_core.data.audio_features import log_mel, resample
from avatar_core.registry import Registry

__all__ = [
    "BLANKING",
    "Clip",
    "MediaError",
    "blank_clip",
    "decode_clip",
    "MediaInfo",
    "fit_frame_size",
    "load_audio",
    "load_clip",
    "load_frames",
    "log_mel",
    "probe_media",
    "resolve_media_path",
    "sample_frame_indices",
]

PATCH = 28  # Qwen2-VL patch size (14) x spatial merge size (2)


class MediaError(ValueError):
    """A media file that cannot be used; `path` names the file and `reason` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # keeps path and reason when raised in a worker process
        return (type(self), (self.path, self.reason))


@dataclass
class Clip:
    frames: np.ndarray  # [T, H, W, 3] uint8, H and W multiples of 28, H*W <= max_pixels
    audio: np.ndarray  # [N] float32 mono at sample_rate
    sample_rate: int
    audio_missing: bool  # True when the file had no audio track and silence was substituted
    duration_s: float
    path: str
    # [T] time in seconds of each sampled frame in the clip (None: unknown, taken as evenly spread
    # over the duration). The prompt encoder derives the frame rate that places video tokens on
    # the same time axis as the audio tokens (Qwen2.5-Omni's TMRoPE) from it.
    frame_times: np.ndarray | None = None


# The evaluation controls: control name -> (blank the video, blank the audio).
BLANKING: dict[str, tuple[bool, bool]] = {
    "blank_media": (True, True),
    "blank_video": (True, False),
    "blank_audio": (False, True),
}


def blank_clip(clip: Clip, video: bool = True, audio: bool = True) -> Clip:
    """`clip` with black frames and/or silence of the same shapes (the evaluation controls)."""
    return Clip(
        frames=np.zeros_like(clip.frames) if video else clip.frames,
        audio=np.zeros_like(clip.audio) if audio else clip.audio,
        sample_rate=clip.sample_rate,
        audio_missing=clip.audio_missing,
        duration_s=clip.duration_s,
        path=clip.path,
        frame_times=clip.frame_times,
    )


@dataclass
class MediaInfo:
    """What the container says about a file, read without decoding frames."""

    path: str
    width: int
    height: int
    n_frames: int
    fps: float
    duration_s: float
    has_audio: bool


def _shortened(path: str, limit: int = 120) -> str:
    return path if len(path) <= limit else f"{path[: limit // 2]}...{path[-limit // 2 :]} ({len(path)} chars)"


def _over_limits(base: Path, relative: str) -> str:
    """Why the OS would refuse `base / relative` as too long ('' if it would not)."""
    try:
        name_max, path_max = os.pathconf(base, "PC_NAME_MAX"), os.pathconf(base, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096  # Linux's limits
    longest = max((len(part.encode()) for part in Path(relative).parts), default=0)
    if longest > name_max:
        return f"File name too long: a path component of {longest} bytes (the file system allows {name_max})"
    total = len(str(base / relative).encode())
    if total >= path_max:
        return f"File name too long: the path is {total} bytes (the file system allows {path_max - 1})"
    return ""


def resolve_media_path(root: str | Path, relative: str) -> Path:
    """`root / relative`, refusing absolute paths and anything ('..', symlinks) that leaves root.

    Every failure is a MediaError naming the path, including what the OS refuses to resolve
    (a symlink loop, a name longer than the file system allows)."""
    if not relative or not str(relative).strip():
        raise MediaError(relative, "empty media path")
    if "\x00" in str(relative):
        raise MediaError(repr(relative), "media path contains a NUL byte")
    if Path(relative).is_absolute():
        raise MediaError(
            relative, "absolute media paths are not allowed; give a path relative to the media root"
        )
    base = Path(root).resolve()
    too_long = _over_limits(base, str(relative))
    if too_long:
        raise MediaError(_shortened(str(relative)), too_long)
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop (RuntimeError before Python 3.13), ENAMETOOLONG
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise MediaError(_shortened(str(relative)), f"cannot resolve the media path: {reason}") from None
    if not target.is_relative_to(base):
        raise MediaError(relative, f"path escapes the media root {base} (resolves to {target})")
    return target


def sample_frame_indices(num_frames_in_clip: int, n: int) -> np.ndarray:
    """`n` indices spread uniformly over the clip, first and last frame included ([n] int64)."""
    if num_frames_in_clip < 1:
        raise ValueError(f"num_frames_in_clip must be >= 1, got {num_frames_in_clip}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    return np.round(np.linspace(0, num_frames_in_clip - 1, n)).astype(np.int64)


def fit_frame_size(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """Target (height, width): aspect kept, multiples of 28 (at least 28), product <= max_pixels."""
    if max_pixels < PATCH * PATCH:
        raise ValueError(f"max_pixels must be >= {PATCH * PATCH} (one 28x28 patch), got {max_pixels}")
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    h = max(PATCH, round(height / PATCH) * PATCH)
    w = max(PATCH, round(width / PATCH) * PATCH)
    if h * w > max_pixels:  # shrink by the area ratio, rounding down so the budget holds
        scale = math.sqrt(max_pixels / (height * width))
        h = max(PATCH, math.floor(height * scale / PATCH) * PATCH)
        w = max(PATCH, math.floor(width * scale / PATCH) * PATCH)
    # an extreme aspect ratio can still overflow after the 28-pixel floor: trim the long side
    if h * w > max_pixels:
        if h >= w:
            h = max(PATCH, (max_pixels // w) // PATCH * PATCH)
        else:
            w = max(PATCH, (max_pixels // h) // PATCH * PATCH)
    return h, w


def _open(path: Path) -> av.container.InputContainer:
    try:
        if not path.is_file():
            raise MediaError(path, "file not found")
    except OSError as err:  # ENAMETOOLONG, EACCES on a parent folder: is_file only hides ENOENT-like errors
        raise MediaError(path, f"cannot access: {err.strerror or err}") from None
    try:
        return av.open(str(path))
    except av.error.FFmpegError as err:
        raise MediaError(path, f"cannot be opened as media (corrupt or truncated?): {err}") from None


def _count_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    return sum(1 for packet in container.demux(stream) if packet.size)


ISO_BOX_TYPES = {
    b"ftyp",
    b"moov",
    b"mdat",
    b"free",
    b"skip",
    b"wide",
    b"uuid",
    b"moof",
    b"mfra",
    b"meta",
    b"pdin",
}


def _check_iso_boxes(path: Path) -> None:
    """Walk the top-level boxes of an MP4/MOV file: a box that runs past the end of the file means
    the file was cut. FFmpeg opens some such files anyway (a cut in the audio track's index
    silently drops the audio stream), so this is checked before trusting the container."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return  # not ISO base media: the demuxer alone judges it
        offset = 0
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1:  # 64-bit size follows
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # runs to the end of the file
                return
            if box_size < 8 or offset + box_size > size:
                name = box_type.decode("latin-1") if box_type in ISO_BOX_TYPES else repr(box_type)
                raise MediaError(
                    path,
                    f"truncated or corrupt file: box {name} at byte {offset} needs {box_size} bytes "
                    f"but the file has {size - offset} left",
                )
            offset += box_size


def probe_media(path: str | Path) -> MediaInfo:
    """Read streams, frame size, frame count and duration from the container (no decoding)."""
    path = Path(path)
    with _open(path) as container:
        _check_iso_boxes(path)
        if not container.streams.video:
            raise MediaError(path, "no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        has_audio = bool(container.streams.audio)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
        indexed = stream.frames > 0  # 0 in containers without a frame index (Matroska, WebM)
        n_frames = stream.frames if indexed else _count_packets(container, stream)
    if n_frames <= 0:
        raise MediaError(path, "zero-length clip: the video stream holds no frames")
    if not indexed and fps > 0 and n_frames < 0.9 * duration * fps - 1:
        # counted frames fall short of the declared length: the end of the file is missing
        raise MediaError(
            path,
            f"truncated video: the container declares {duration:.2f}s at {fps:g} fps but holds {n_frames} frames",
        )
    if width <= 0 or height <= 0:
        raise MediaError(path, f"video stream has no valid frame size ({width}x{height})")
    if duration <= 0:
        duration = n_frames / fps if fps > 0 else 0.0
    return MediaInfo(str(path), width, height, n_frames, fps, duration, has_audio)


def _check_limits(info: MediaInfo, max_duration_s: float, max_resolution: int) -> None:
    if max(info.width, info.height) > max_resolution:
        raise MediaError(
            info.path, f"resolution {info.width}x{info.height} exceeds max_resolution {max_resolution}"
        )
    if info.duration_s > max_duration_s:
        raise MediaError(
            info.path, f"duration {info.duration_s:.1f}s exceeds max_duration_s {max_duration_s:g}"
        )


# --------------------------------------------------------------------------- frame backends

FrameBackend = Callable[[Path, np.ndarray, "tuple[int, int] | None"], np.ndarray]
"""(path, sorted unique indices, (height, width) or None for the native size) -> [K, h, w, 3]"""
FRAME_BACKENDS: Registry[FrameBackend] = Registry("video backend")


@FRAME_BACKENDS.register("decord")
def _decord_frames(path: Path, indices: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    import decord

    height, width = size or (-1, -1)  # -1: decord keeps the native size and adds no scale filter
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, width=width, height=height)
        last = len(reader) - 1
        return reader.get_batch([min(int(i), last) for i in indices]).asnumpy()
    except (decord.DECORDError, RuntimeError) as err:
        # decord prefixes "[hh:mm:ss] source.cc:line: " (sometimes twice): keep the message only
        first_line = re.sub(r"^(\[[\d:]+\] \S+:\d+: )+", "", str(err).splitlines()[0])
        raise MediaError(path, f"decord cannot decode the video: {first_line[:300]}") from None


@FRAME_BACKENDS.register("pyav")
def _pyav_frames(path: Path, indices: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    wanted = {int(i): k for k, i in enumerate(indices)}
    out: list[np.ndarray | None] = [None] * len(indices)
    last = int(indices[-1])
    decoded = 0
    # one swscale pass from the decoder's YUV to RGB at the target size; bilinear is the closest
    # of swscale's methods to decord's scale filter (measured: 0.28 grey levels apart on average)
    scale = {} if size is None else {"height": size[0], "width": size[1], "interpolation": "BILINEAR"}
    with _open(path) as container:
        try:
            for position, frame in enumerate(container.decode(video=0)):
                decoded = position + 1
                if position in wanted:
                    out[wanted[position]] = frame.to_ndarray(format="rgb24", **scale)
                if position >= last:
                    break
        except av.error.FFmpegError as err:
            raise MediaError(path, f"decoding failed after {decoded} frames: {err}") from None
    missing = [int(i) for i, f in zip(indices, out, strict=True) if f is None]
    if missing:
        raise MediaError(path, f"truncated video: decoded {decoded} frames, frame {missing[0]} is missing")
    return np.stack(out)  # type: ignore[arg-type]


def _decode_frames(path: Path, info: MediaInfo, n_frames: int, max_pixels: int, backend: str) -> np.ndarray:
    decode = FRAME_BACKENDS.get(backend)
    target = fit_frame_size(info.height, info.width, max_pixels)  # (h, w)
    size = None if target == (info.height, info.width) else target
    indices = sample_frame_indices(info.n_frames, n_frames)  # [n]
    unique, inverse = np.unique(indices, return_inverse=True)  # decoders want each frame once
    frames = decode(path, unique, size)[inverse]  # [n, h, w, 3]
    if frames.shape != (n_frames, *target, 3):
        raise MediaError(
            path, f"decoder returned frames of shape {frames.shape}, expected {(n_frames, *target, 3)}"
        )
    return frames.astype(np.uint8, copy=False)


def load_frames(path: str | Path, n_frames: int, max_pixels: int, backend: str = "decord") -> np.ndarray:
    """`n_frames` uniformly sampled RGB frames [n, H, W, 3] uint8, resized to fit `max_pixels`."""
    path = Path(path)
    return _decode_frames(path, probe_media(path), n_frames, max_pixels, backend)


# --------------------------------------------------------------------------- audio


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray | None:
    """Mono float32 audio [N] at `sample_rate`, or None when the file has no audio stream.

    Channels are averaged. The decoded length is cut to the stream's duration: AAC decoders emit
    a padded last frame, which would otherwise add up to 1023 samples of silence.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        native_rate = stream.codec_context.sample_rate or sample_rate
        expected = None
        if stream.duration is not None and stream.time_base is not None:
            expected = round(float(stream.duration * stream.time_base) * native_rate)
        to_float = av.AudioResampler(format="fltp")  # format conversion only: same rate and layout
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for converted in to_float.resample(frame):
                    chunks.append(converted.to_ndarray())  # [C, n]
        except av.error.FFmpegError as err:
            raise MediaError(path, f"audio decoding failed: {err}") from None
    if not chunks:
        raise MediaError(path, "audio stream holds no decodable samples")
    wave = np.concatenate(chunks, axis=1).mean(axis=0).astype(np.float32)  # [N]
    if expected:
        wave = wave[:expected]
    return resample(wave, native_rate, sample_rate)


def load_clip(
    path: str | Path,
    *,
    n_frames: int = 4,
    max_pixels: int = 56 * 56,
    sample_rate: int = 16000,
    backend: str = "decord",
    allow_missing_audio: bool = True,
    max_duration_s: float = 600.0,
    max_resolution: int = 8192,
) -> Clip:
    """Probe, check the limits, then decode frames and audio of one clip (see the module doc)."""
    path = Path(path)
    info = probe_media(path)
    _check_limits(info, max_duration_s, max_resolution)
    frames = _decode_frames(path, info, n_frames, max_pixels, backend)
    times = sample_frame_indices(info.n_frames, n_frames) / info.fps if info.fps > 0 else None  # [n]
    audio = load_audio(path, sample_rate) if info.has_audio else None
    missing = audio is None
    if missing:
        if not allow_missing_audio:
            raise MediaError(path, "no audio stream (allow_missing_audio is off)")
        audio = np.zeros(round(info.duration_s * sample_rate), dtype=np.float32)
    return Clip(frames, audio, sample_rate, missing, info.duration_s, str(path), times)


STILL_IMAGES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def decode_clip(path: str | Path, media: MediaConfig) -> Clip:
    """One clip decoded with the media settings of params.yaml (the call every reader shares).

    Still images (OmniBench, AV-Odyssey) go through PyAV whatever the backend: decord opens only
    video containers.
    """
    return load_clip(
        path,
        n_frames=media.n_frames,
        max_pixels=media.max_pixels,
        sample_rate=media.sample_rate,
        backend="pyav" if Path(path).suffix.lower() in STILL_IMAGES else media.backend,
        allow_missing_audio=media.allow_missing_audio,
        max_duration_s=media.max_duration_s,
        max_resolution=media.max_resolution,
    )
