"""The clips of the scale benchmark: moving boxes over a gradient with beeps, as H.264 + AAC MP4.

Written by the benchmark itself (not the synthetic generator, whose design may change): clip i
shows 1-4 boxes (seeded by i) moving and bouncing over a coloured gradient for `seconds` s at
8 fps, with a 48 kHz mono AAC track of beeps, plus a JSONL record per clip (a multiple-choice
count question with a reasoning trace for SFT). x264 runs with preset veryfast (the medium preset
of avatar_core.data.mp4 takes about 1.6 s per 10-s clip on our machine), which makes decoding a
little cheaper than for typical camera video. Existing clips are kept, so a rerun only writes
what is missing.
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path

SIZE, FPS, AUDIO_RATE = (360, 640), 8, 48000  # (height, width) of the main set
TASK = "count_boxes"


def render_clip(index: int, seconds: float, size: tuple[int, int]) -> tuple:
    """Frames [T, H, W, 3] with 1-4 boxes moving over a gradient, and beeps, seeded by index."""
    import numpy as np

    height, width = size
    rng = np.random.default_rng(index)
    n_boxes = int(rng.integers(1, 5))
    steps = int(seconds * FPS)
    yy, xx = np.mgrid[0:height, 0:width]
    hue = rng.integers(0, 255, size=3)
    background = np.stack([(xx * 255 // width + hue[0]) % 256, (yy * 255 // height + hue[1]) % 256,
                           np.full_like(xx, hue[2])], axis=-1).astype(np.uint8)  # fmt: skip
    frames = np.repeat(background[None], steps, axis=0)  # [T, H, W, 3]
    room = np.array([height - 60, width - 80])
    start = rng.integers(0, room, size=(n_boxes, 2))
    velocity = rng.integers(-9, 10, size=(n_boxes, 2))
    colours = rng.integers(0, 256, size=(n_boxes, 3))
    for t in range(steps):
        for b in range(n_boxes):
            y, x = (start[b] + t * velocity[b]) % (2 * room)  # bounce off the edges
            y, x = min(y, 2 * room[0] - y), min(x, 2 * room[1] - x)
            frames[t, y : y + 60, x : x + 80] = colours[b]
    tt = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    audio = 0.3 * np.sin(2 * np.pi * (300 + 100 * n_boxes) * tt) * ((tt % 1.0) < 0.25)
    return frames, audio.astype(np.float32), n_boxes


def encode(path: Path, frames, audio) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        video.height, video.width = frames.shape[1:3]
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "mono"
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        for start in range(0, audio.size, 1024):
            chunk = av.AudioFrame.from_ndarray(audio[None, start : start + 1024], format="flt", layout="mono")
            chunk.sample_rate = AUDIO_RATE
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())


def make_clip(index: int, folder: Path, seconds: float, size: tuple[int, int]) -> dict:
    import numpy as np

    path = folder / "media" / f"clip-{index:05d}.mp4"
    n_boxes = int(np.random.default_rng(index).integers(1, 5))  # render_clip's first draw
    if not path.is_file():
        frames, audio, n_boxes = render_clip(index, seconds, size)
        tmp = path.with_suffix(".tmp.mp4")
        encode(tmp, frames, audio)
        tmp.rename(path)
    letter = "ABCD"[n_boxes - 1]
    return {
        "id": f"clip-{index:05d}", "task": TASK, "question": "How many boxes move across the screen?",
        "answer": letter, "choices": ["one", "two", "three", "four"], "video": f"media/clip-{index:05d}.mp4",
        "reasoning": f"<think>I count {n_boxes} moving boxes.</think><answer>{letter}</answer>", "split": "train",
    }  # fmt: skip


def make_clips(folder: Path, n: int, seconds: float, size: tuple[int, int], sizes: list[int]) -> float:
    """Write n clips (skipping those already there) and records-<size>.jsonl; return the seconds."""
    from multiprocessing import Pool

    (folder / "media").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with Pool(2) as pool:
        make = partial(make_clip, folder=folder, seconds=seconds, size=size)
        records = pool.map(make, range(n), chunksize=4)
    for count in sizes:
        (folder / f"records-{count}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:count]))
    print(f"clips ready: {n} of {size[1]}x{size[0]} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return time.perf_counter() - start
