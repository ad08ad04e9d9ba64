"""Write MP4 files (H.264 video + AAC audio) through PyAV, byte-for-byte reproducibly.

The synthetic generator and the media tests write their clips with `write_mp4`. The same frames
and samples give the same bytes: libx264 runs single-threaded at a constant quantiser, the AAC
encoder single-threaded, and the container and codecs are flagged bitexact (no creation time or
version strings). Measured here (x264 core 165): in CRF mode, even with one thread, the packets of
noisy 56x56 clips differed from run to run (its rate control reads state that is not reset);
constant QP gave identical bytes over 40 runs in two processes, with and without audio.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

VIDEO_OPTIONS = {"qp": "18", "preset": "medium", "threads": "1"}


def _video_stream(container: av.container.OutputContainer, fps: int, height: int, width: int, qp: int):
    stream = container.add_stream("libx264", rate=fps, options={**VIDEO_OPTIONS, "qp": str(qp)})
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.thread_count = 1
    stream.codec_context.flags |= av.codec.context.Flags.bitexact
    return stream


def _audio_stream(container: av.container.OutputContainer, sample_rate: int):
    stream = container.add_stream("aac", rate=sample_rate)
    stream.layout = "mono"
    stream.thread_count = 1
    stream.codec_context.flags |= av.codec.context.Flags.bitexact
    return stream


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    audio: np.ndarray | None,
    *,
    fps: int,
    sample_rate: int = 16000,
    qp: int = 18,
) -> Path:
    """Encode `frames` [T, H, W, 3] uint8 and mono `audio` [N] float32 in [-1, 1] (None: no audio
    track) into an MP4 at `path`. H and W must be even (yuv420p). The file appears atomically."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [T, H, W, 3] uint8, got shape {frames.shape} dtype {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty: an MP4 needs at least one frame")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"frame height and width must be even for yuv420p, got {height}x{width}")
    if audio is not None:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be mono [N], got shape {audio.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with av.open(str(tmp), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
            video = _video_stream(container, fps, height, width, qp)
            sound = _audio_stream(container, sample_rate) if audio is not None else None
            for index, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = index
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
            if sound is not None and audio is not None:
                chunk = av.AudioFrame.from_ndarray(audio[np.newaxis], format="fltp", layout="mono")
                chunk.sample_rate = sample_rate
                chunk.pts = 0
                container.mux(sound.encode(chunk))
                container.mux(sound.encode(None))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
