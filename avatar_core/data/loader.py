"""Clips for training and evaluation: read lazily, cached within a byte limit, loaded ahead.

A `ClipLoader` gives the clip of a sample from a source: `StoreSource` reads the media store
ingest wrote (store.py), `DecodeSource` decodes the file with `decode_clip` (for media that were
never ingested, such as an external benchmark's folder). Clips it has read are kept in a
least-recently-used cache bounded in bytes (`data.loader.cache_mb`); `prefetch(samples)` hands
the next batch to background threads (`data.loader.threads`) so it is read while the current
batch trains or generates. What a process holds is therefore at most the cache limit plus the
clips of the batches in flight (the current one and the one prefetched), whatever the size of
the data set. Prefetching only warms: a sample that was not prefetched is read when asked for.

Blanked-media controls (the evaluation's `blank_media`/`blank_video`/`blank_audio`, `BLANKING`)
are a transform of what the loader returns: `control_clips(loader, name)` gives a view sharing the
same cache whose clips are blanked as they are handed out, never a second store or a second decode.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from avatar_core.config import MediaConfig
from avatar_core.data.media import BLANKING, Clip, blank_clip, decode_clip, resolve_media_path
from avatar_core.data.schema import Sample
from avatar_core.data.store import MediaStore, store_dir

__all__ = [
    "BlankedClips",
    "ClipLoader",
    "Clips",
    "ClipSource",
    "DecodeSource",
    "LoaderStats",
    "StoreSource",
    "blank",
    "clip_bytes",
    "control_clips",
    "decode_clip",
]

blank = blank_clip  # black frames and/or silence of the same shapes (data.media)


def clip_bytes(clip: Clip) -> int:
    return int(clip.frames.nbytes + clip.audio.nbytes)


class ClipSource(Protocol):
    """Where a loader gets clips from; `key` is a sample's media path relative to the root."""

    def load(self, key: str, sample_id: str) -> Clip: ...

    def has(self, key: str) -> bool: ...


class StoreSource:
    """Clips from the media store of an ingested data set (checked against the media settings)."""

    def __init__(
        self, data_dir: str | Path, root: str | Path, media: MediaConfig, verify: bool = True
    ) -> None:
        self.store = MediaStore(store_dir(data_dir), verify=verify)
        self.store.check_settings(media.model_dump(mode="json"))
        self.root = Path(root)

    def load(self, key: str, sample_id: str) -> Clip:
        entry = self.store.read(key, sample_id)
        path = resolve_media_path(self.root, key)  # the path load_clip would report
        return Clip(
            entry.frames,
            entry.audio,
            entry.sample_rate,
            entry.audio_missing,
            entry.duration_s,
            str(path),
            entry.frame_times,
        )

    def has(self, key: str) -> bool:
        return key in self.store


class DecodeSource:
    """Clips decoded from their files on demand (media that no ingest stored)."""

    def __init__(self, root: str | Path, media: MediaConfig) -> None:
        self.root = Path(root)
        self.media = media

    def load(self, key: str, sample_id: str) -> Clip:
        return decode_clip(resolve_media_path(self.root, key), self.media)

    def has(self, key: str) -> bool:
        return True  # decodability shows when the clip is read


@dataclass
class LoaderStats:
    loads: int = 0  # clips read from the source (store reads or decodes)
    hits: int = 0  # requests answered from the cache or a finished prefetch
    waits: int = 0  # requests that waited for a prefetch still running
    cached_bytes: int = 0
    peak_cached_bytes: int = 0
    peak_pending: int = 0  # most clips loaded ahead and not yet asked for


class ClipLoader:
    """`get(sample)` -> the sample's clip (None for text-only samples), through a bounded cache."""

    def __init__(self, source: ClipSource, cache_bytes: int, threads: int = 1) -> None:
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {cache_bytes}")
        self.source = source
        self.cache_bytes = int(cache_bytes)
        self.stats = LoaderStats()
        self._cache: OrderedDict[str, Clip] = OrderedDict()
        self._pending: OrderedDict[str, Future] = OrderedDict()
        self._recent: deque[set[str]] = deque(maxlen=2)  # keys of the last two prefetch calls
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="clip-loader") if threads > 0 else None

    # ------------------------------------------------------------------ reading

    def _load(self, key: str, sample_id: str) -> Clip:
        with self._lock:
            self.stats.loads += 1
        return self.source.load(key, sample_id)

    def _remember(self, key: str, clip: Clip) -> None:
        size = clip_bytes(clip)
        if size > self.cache_bytes:
            return  # larger than the whole cache: handed out, never kept
        while self._cache and self.stats.cached_bytes + size > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self.stats.cached_bytes -= clip_bytes(old)
        self._cache[key] = clip
        self.stats.cached_bytes += size
        self.stats.peak_cached_bytes = max(self.stats.peak_cached_bytes, self.stats.cached_bytes)

    def get(self, sample: Sample) -> Clip | None:
        if not sample.video:
            return None
        key = sample.video
        with self._lock:
            clip = self._cache.get(key)
            if clip is not None:
                self._cache.move_to_end(key)
                self.stats.hits += 1
                return clip
            future = self._pending.pop(key, None)
        if future is not None:
            ready = future.done()
            with self._lock:
                self.stats.hits += ready
                self.stats.waits += not ready
            clip = future.result()  # a load error surfaces here, naming the sample
        else:
            clip = self._load(key, sample.id)
        with self._lock:
            self._remember(key, clip)
        return clip

    def get_many(self, samples: Iterable[Sample]) -> list[Clip | None]:
        return [self.get(s) for s in samples]

    # ------------------------------------------------------------------ loading ahead

    def prefetch(self, samples: Iterable[Sample]) -> None:
        """Start reading the clips of `samples` in the background (no-op without threads).

        Only the clips of the last two calls stay pending (the batch about to be used and the one
        after it): older results nobody asked for are dropped, so a wrong guess costs a read, never
        memory.
        """
        if self._pool is None:
            return
        wanted: dict[str, str] = {}
        for s in samples:
            if s.video:
                wanted.setdefault(s.video, s.id)
        with self._lock:
            self._recent.append(set(wanted))
            keep = set().union(*self._recent)
            for key in [k for k in self._pending if k not in keep]:
                self._pending.pop(key).cancel()
            for key, sample_id in wanted.items():
                if key in self._cache or key in self._pending:
                    continue
                self._pending[key] = self._pool.submit(self._load, key, sample_id)
            self.stats.peak_pending = max(self.stats.peak_pending, len(self._pending))

    def check(self, samples: list[Sample]) -> tuple[list[Sample], list[dict[str, str]]]:
        """Split samples into those the source holds and a report of those it does not (no reads)."""
        good, bad = [], []
        for s in samples:
            if not s.video or self.source.has(s.video):
                good.append(s)
            else:
                bad.append({"id": s.id, "video": s.video, "reason": "no entry in the media store"})
        return good, bad

    def blanked(self, video: bool = True, audio: bool = True) -> BlankedClips:
        """A view of this loader whose clips are blanked (same cache, nothing decoded twice)."""
        return BlankedClips(self, video, audio)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._lock:
            self._pending.clear()

    def __enter__(self) -> ClipLoader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class BlankedClips:
    """`get`/`get_many`/`prefetch` of a loader, with `blank(clip, video, audio)` applied."""

    def __init__(self, loader: ClipLoader, video: bool, audio: bool) -> None:
        self.loader, self.video, self.audio = loader, video, audio

    def get(self, sample: Sample) -> Clip | None:
        clip = self.loader.get(sample)
        return None if clip is None else blank_clip(clip, self.video, self.audio)

    def get_many(self, samples: Iterable[Sample]) -> list[Clip | None]:
        return [self.get(s) for s in samples]

    def prefetch(self, samples: Iterable[Sample]) -> None:
        self.loader.prefetch(samples)


Clips = ClipLoader | BlankedClips  # what readers of clips accept


def control_clips(loader: ClipLoader, control: str | None) -> Clips:
    """The clips an evaluation run reads: `loader` itself for None or "media", else the view
    blanked as the control `control` (a key of `BLANKING`) says."""
    if control in (None, "media"):
        return loader
    if control not in BLANKING:
        raise ValueError(f"unknown control {control!r}; valid names: {', '.join(BLANKING)}")
    return loader.blanked(*BLANKING[control])
