"""The media store: the model-ready media of every sample, decoded once by ingest, read lazily after.

Layout of `<data_dir>/media_store/` (a DVC output with the rest of the data folder):
- `frames.bin`: the sampled, resized frames of every clip, uint8 [T, H, W, 3], back to back;
- `audio.bin`: every clip's mono audio at the configured rate, in `audio_dtype`, back to back;
- `index.npz`: one row per media file, keyed by its path relative to the media root (the
  `video` field of the samples, so samples sharing a clip share an entry): byte offsets, frame
  shape, audio length, CRC-32 of the frame bytes and of the audio bytes, sample rate,
  missing-audio flag, duration, and the time of every sampled frame (`frame_times`, all entries'
  back to back, float64, NaN for a clip whose frame times are unknown). Plain arrays, loaded
  with `allow_pickle=False`;
- `store.json`: format version, the media settings (`data.media`) the entries were decoded with,
  entry count and file sizes.

Both .bin files are flat arrays that `np.memmap` can map at the offsets of the index. The
reader does not map them: it reads an entry with two positioned reads (`os.preadv`) into fresh
arrays, so a process holds only the entries it keeps (pages touched through a map count in the
process's RSS until the kernel reclaims them, which would make a pass over a large store look
like it holds the whole store). Entries are checked when read: offsets inside the files, then
the CRC-32s; a mismatch raises `StoreError` naming the sample and the media path.

The writer fills a sibling `.tmp` folder and swaps it in on `commit()`, so a crash never leaves
a half-written store where readers look.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["STORE_DIR", "MediaStore", "StoreEntry", "StoreError", "StoreWriter", "store_dir"]

STORE_DIR = "media_store"
FORMAT = 3  # 2: frame times kept; 3: frames scaled by the decoder (swscale), not by PIL
AUDIO_DTYPES = {"float32": np.float32, "float16": np.float16}


class StoreError(ValueError):
    """A media store that cannot be used, or an entry of it that is missing or corrupt."""


def store_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / STORE_DIR


@dataclass
class StoreEntry:
    """What the store returns for one media file: the fields of `media.Clip` but its path."""

    frames: np.ndarray  # [T, H, W, 3] uint8
    audio: np.ndarray  # [N] float32 mono at sample_rate
    sample_rate: int
    audio_missing: bool
    duration_s: float
    frame_times: np.ndarray | None = None  # [T] seconds of each sampled frame (None: unknown)


def crc32(array: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


class StoreWriter:
    """Append entries in order, then `commit()`; `settings` are the media settings used to decode."""

    def __init__(self, directory: str | Path, settings: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.settings = dict(settings)
        self.audio_dtype = AUDIO_DTYPES[self.settings.get("audio_dtype", "float32")]
        self.tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self._frames = open(self.tmp / "frames.bin", "wb")  # noqa: SIM115  (closed in commit)
        self._audio = open(self.tmp / "audio.bin", "wb")  # noqa: SIM115
        self._rows: list[tuple] = []
        self._keys: list[str] = []
        self._frame_times: list[np.ndarray] = []
        self._frames_at = self._audio_at = 0

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, entry: StoreEntry, crcs: tuple[int, int] | None = None) -> None:
        """Append one entry; `crcs` (frames, audio), when the decoder already computed them over
        exactly these arrays, saves a second pass over the bytes."""
        frames = np.ascontiguousarray(entry.frames, dtype=np.uint8)
        audio = np.ascontiguousarray(entry.audio, dtype=self.audio_dtype)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"store entry {key!r}: frames must be [T, H, W, 3], got {list(frames.shape)}")
        if audio.ndim != 1:
            raise ValueError(f"store entry {key!r}: audio must be mono [N], got {list(audio.shape)}")
        if entry.frame_times is not None and np.shape(entry.frame_times) != frames.shape[:1]:
            raise ValueError(
                f"store entry {key!r}: {np.size(entry.frame_times)} frame times for {len(frames)} frames"
            )
        frames_crc, audio_crc = crcs if crcs is not None else (crc32(frames), crc32(audio))
        times = entry.frame_times if entry.frame_times is not None else np.full(len(frames), np.nan)
        self._frame_times.append(np.asarray(times, dtype=np.float64))  # [T]
        self._frames.write(memoryview(frames).cast("B"))
        self._audio.write(memoryview(audio).cast("B"))
        self._keys.append(key)
        self._rows.append(
            (
                self._frames_at,
                *frames.shape[:3],
                self._audio_at,
                audio.size,
                frames_crc,
                audio_crc,
                entry.sample_rate,
                entry.audio_missing,
                entry.duration_s,
            )
        )
        self._frames_at += frames.nbytes
        self._audio_at += audio.nbytes

    def commit(self) -> Path:
        """Write the index and the manifest, then put the store in place (replacing an old one)."""
        self._frames.close()
        self._audio.close()
        rows = list(zip(*self._rows, strict=True)) if self._rows else [()] * 11
        np.savez(
            self.tmp / "index.npz",
            keys=np.array(self._keys, dtype=np.str_),
            frames_offset=np.array(rows[0], dtype=np.int64),
            frames_shape=np.array(list(zip(*rows[1:4], strict=True)), dtype=np.int64).reshape(-1, 3),
            audio_offset=np.array(rows[4], dtype=np.int64),
            audio_length=np.array(rows[5], dtype=np.int64),
            frames_crc=np.array(rows[6], dtype=np.uint32),
            audio_crc=np.array(rows[7], dtype=np.uint32),
            sample_rate=np.array(rows[8], dtype=np.int64),
            audio_missing=np.array(rows[9], dtype=bool),
            duration_s=np.array(rows[10], dtype=np.float64),
            frame_times=np.concatenate(self._frame_times) if self._frame_times else np.zeros(0),
        )
        manifest = {
            "format": FORMAT,
            "settings": self.settings,
            "entries": len(self._keys),
            "frames_bytes": self._frames_at,
            "audio_bytes": self._audio_at,
        }
        (self.tmp / "store.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        self.tmp.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)
        return self.directory


class MediaStore:
    """Read entries of a store written by `StoreWriter`; safe to share between threads."""

    def __init__(self, directory: str | Path, verify: bool = True) -> None:
        self.directory = Path(directory)
        self.verify = verify
        manifest_path = self.directory / "store.json"
        if not manifest_path.is_file():
            raise StoreError(f"{self.directory}: no media store here; run `avatar ingest` (dvc repro ingest)")
        try:
            manifest = json.loads(manifest_path.read_text())
            index = np.load(self.directory / "index.npz", allow_pickle=False)
            columns = {name: index[name] for name in index.files}
        except (OSError, ValueError, KeyError) as err:
            raise StoreError(f"{self.directory}: unreadable store manifest or index ({err})") from None
        if manifest.get("format") != FORMAT:
            raise StoreError(
                f"{manifest_path}: store format {manifest.get('format')!r}, this version reads {FORMAT}; "
                "rerun ingest (`dvc repro --force ingest` or `avatar ingest`) to rebuild it"
            )
        self.settings: dict[str, Any] = manifest["settings"]
        self.audio_dtype = np.dtype(AUDIO_DTYPES[self.settings.get("audio_dtype", "float32")])
        self._columns = columns
        self._row = {str(key): i for i, key in enumerate(columns["keys"])}
        frame_counts = columns["frames_shape"][:, 0] if len(self._row) else np.zeros(0, np.int64)  # [E]
        self._times_at = np.concatenate([[0], np.cumsum(frame_counts)])  # [E + 1] start of each entry
        if columns["frame_times"].shape != (int(self._times_at[-1]),):
            raise StoreError(
                f"{self.directory}: the index holds {columns['frame_times'].size} frame times for "
                f"{int(self._times_at[-1])} frames: the index is corrupt; rebuild the store"
            )
        self._fds = {
            name: os.open(self.directory / f"{name}.bin", os.O_RDONLY) for name in ("frames", "audio")
        }
        self._sizes = {name: os.fstat(fd).st_size for name, fd in self._fds.items()}

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: str) -> bool:
        return key in self._row

    def keys(self) -> list[str]:
        return list(self._row)

    def entry_bytes(self, key: str) -> int:
        """Bytes the entry takes in RAM once read (frames plus float32 audio)."""
        i = self._row[key]
        frames = 3 * int(np.prod(self._columns["frames_shape"][i]))  # [T, H, W] x 3 channels
        return frames + 4 * int(self._columns["audio_length"][i])

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Raise unless the store was decoded with these media settings (`data.media`)."""
        differ = {k: (self.settings.get(k), v) for k, v in settings.items() if self.settings.get(k) != v}
        if differ:
            listed = "; ".join(
                f"{k}: store {old!r}, params {new!r}" for k, (old, new) in sorted(differ.items())
            )
            raise StoreError(
                f"{self.directory} was built with other media settings ({listed}); "
                "rerun ingest (`dvc repro ingest` or `avatar ingest`) to rebuild it"
            )

    def _read(self, name: str, offset: int, out: np.ndarray, what: str) -> None:
        view = memoryview(out).cast("B")
        if offset < 0 or offset + out.nbytes > self._sizes[name]:
            raise StoreError(
                f"{what}: {name} bytes {offset}..{offset + out.nbytes} lie outside {name}.bin "
                f"({self._sizes[name]} bytes): the store is truncated or its index is corrupt"
            )
        done = 0
        while done < out.nbytes:  # preadv may return short reads
            got = os.preadv(self._fds[name], [view[done:]], offset + done)
            if got <= 0:
                raise StoreError(f"{what}: {name}.bin ended after {done} of {out.nbytes} bytes")
            done += got

    def read(self, key: str, sample_id: str = "") -> StoreEntry:
        """The entry of `key` (a media path); errors name `sample_id` when given."""
        what = f"sample {sample_id!r} (media {key!r}) in {self.directory}" if sample_id else f"media {key!r}"
        if key not in self._row:
            raise StoreError(f"{what}: no entry in the media store (rejected at ingest, or a stale store?)")
        c, i = self._columns, self._row[key]
        frames = np.empty(tuple(int(d) for d in c["frames_shape"][i]) + (3,), dtype=np.uint8)  # [T, H, W, 3]
        audio = np.empty(int(c["audio_length"][i]), dtype=self.audio_dtype)  # [N]
        self._read("frames", int(c["frames_offset"][i]), frames, what)
        self._read("audio", int(c["audio_offset"][i]), audio, what)
        if self.verify:
            for name, array in (("frames", frames), ("audio", audio)):
                if crc32(array) != int(c[f"{name}_crc"][i]):
                    raise StoreError(
                        f"{what}: corrupt store entry, the {name} bytes do not match their CRC-32; "
                        "rebuild the store (`dvc repro --force ingest`) or restore it (`dvc checkout`)"
                    )
        times = c["frame_times"][self._times_at[i] : self._times_at[i + 1]].copy()  # [T]
        return StoreEntry(
            frames=frames,
            audio=audio.astype(np.float32, copy=False),
            sample_rate=int(c["sample_rate"][i]),
            audio_missing=bool(c["audio_missing"][i]),
            duration_s=float(c["duration_s"][i]),
            frame_times=None if np.isnan(times).any() else times,
        )

    def close(self) -> None:
        for fd in getattr(self, "_fds", {}).values():
            os.close(fd)
        self._fds = {}

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> MediaStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
