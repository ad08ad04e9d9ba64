"""Benchmark folders in each released layout, built at test time from tests/fixtures/benchmarks.

A fixture is `tests/fixtures/benchmarks/<benchmark>/<layout>/`: the annotation files as released
(a few real-shaped records, some malformed on purpose), a `MEDIA` file listing the media paths
to generate, and for parquet releases `<name>.rows.json`, the rows of `<name>.parquet`, in which
`"@media:<ext>"` stands for the bytes of a generated file of that type (the release embeds
them). `build_layout` copies the annotations, writes real media (H.264/AAC MP4 with a tone, JPEG/PNG
images, WAV/MP3 audio) and the parquet files into a fresh folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from avatar_core.data.mp4 import write_mp4

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
RATE = 16000


def layouts() -> dict[str, list[str]]:
    """Benchmark -> its fixture layouts, sorted."""
    return {
        bench.name: sorted(p.name for p in bench.iterdir() if p.is_dir())
        for bench in sorted(FIXTURES.iterdir())
        if bench.is_dir()
    }


def _seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _frames(seed: int, n: int = 8, size: int = 56) -> np.ndarray:
    """Frames of one flat colour per clip (from the seed), with a bar that moves: distinct clips."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(40, 216, size=3, dtype=np.uint8)
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    frames[:] = colour
    for i in range(n):
        frames[i, :, (i * 6) % size : (i * 6) % size + 6] = 255
    return frames  # [n, H, W, 3]


def _tone(seed: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.4 * np.sin(2 * np.pi * (300 + seed % 700) * t)).astype(np.float32)  # [N]


def media_bytes(suffix: str, seed: int) -> bytes:
    """A small real media file of type `suffix` (.mp4 .jpg .png .wav .mp3)."""
    import av
    import soundfile
    from PIL import Image

    buffer = io.BytesIO()
    if suffix == ".mp4":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = write_mp4(Path(tmp) / "clip.mp4", _frames(seed), _tone(seed), fps=8, sample_rate=RATE)
            return path.read_bytes()
    if suffix in (".jpg", ".png"):
        Image.fromarray(_frames(seed, 1)[0]).save(buffer, format="JPEG" if suffix == ".jpg" else "PNG")
    elif suffix == ".wav":
        soundfile.write(buffer, _tone(seed), RATE, format="WAV", subtype="PCM_16")
    elif suffix == ".mp3":
        with av.open(buffer, "w", format="mp3") as container:
            stream = container.add_stream("mp3", rate=RATE)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(_tone(seed)[np.newaxis], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, 0
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    else:
        raise ValueError(f"no generator for media of type {suffix!r}")
    return buffer.getvalue()


def _embed(value: Any, where: str) -> Any:
    if isinstance(value, str) and value.startswith("@media:"):
        return media_bytes(value.removeprefix("@media:"), _seed(where))
    if isinstance(value, dict):
        return {k: _embed(v, f"{where}.{k}") for k, v in value.items()}
    return value


def _write_parquet(rows_file: Path, dest: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = json.loads(rows_file.read_text())
    table = pa.Table.from_pylist(
        [{k: _embed(v, f"{rows_file.name}:{i}:{k}") for k, v in row.items()} for i, row in enumerate(rows)]
    )
    pq.write_table(table, dest)


def build_layout(benchmark: str, layout: str, dest: Path) -> Path:
    """Write the fixture `benchmark`/`layout` into the folder `dest` (created); returns `dest`."""
    source = FIXTURES / benchmark / layout
    if not source.is_dir():
        raise FileNotFoundError(f"no fixture {source}")
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or rel.as_posix() == "MEDIA":
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".rows.json"):
            _write_parquet(path, target.with_name(path.name.removesuffix(".rows.json") + ".parquet"))
        else:
            shutil.copyfile(path, target)
    manifest = source / "MEDIA"
    for rel in manifest.read_text().split() if manifest.is_file() else []:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(media_bytes(target.suffix, _seed(rel)))
    return dest


def build_all(dest: Path) -> dict[tuple[str, str], Path]:
    """Every fixture layout under `dest/<benchmark>/<layout>`."""
    return {
        (bench, layout): build_layout(bench, layout, dest / bench / layout)
        for bench, names in layouts().items()
        for layout in names
    }
