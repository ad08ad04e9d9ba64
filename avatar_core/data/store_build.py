"""Ingest's decoding pass: every media file decoded once, in parallel, into the media store.

`build_store` decodes each (key, path) with `decode_clip` and the configured media settings in
`num_workers` processes (the platform's default start method, as the generator's pool: the
ingest process itself decodes nothing before it starts them), keeps at most a few clips in
flight ahead of the writer so memory stays bounded whatever the data set size, and writes the entries in input order, so the same inputs
give the same store bytes for any worker count. Workers convert the audio to the store's dtype
and compute the CRC-32s, leaving the parent only the writes. A file that fails to decode or
breaks a limit is not stored; its reason comes back for `rejected.jsonl`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm.auto import tqdm

from avatar_core.config import MediaConfig
from avatar_core.data.media import MediaError, decode_clip
from avatar_core.data.store import AUDIO_DTYPES, StoreEntry, StoreWriter, crc32

__all__ = ["build_store", "ordered_map"]

A = TypeVar("A")
R = TypeVar("R")
Decoded = tuple[StoreEntry, tuple[int, int]] | str  # the entry and its CRC-32s, or why it failed


def ordered_map(fn: Callable[[A], R], args: Iterable[A], num_workers: int) -> Iterator[R]:
    """`map(fn, args)` over `num_workers` processes (in this process for 0 or 1), in order,
    with at most 2 * num_workers + 2 calls submitted and not yet consumed."""
    if num_workers <= 1:
        yield from map(fn, args)
        return
    ahead = 2 * num_workers + 2
    items = iter(args)
    with ProcessPoolExecutor(num_workers) as pool:
        in_flight = deque(pool.submit(fn, a) for _, a in zip(range(ahead), items, strict=False))
        while in_flight:
            result = in_flight.popleft().result()
            for a in items:  # refill one slot, if anything is left
                in_flight.append(pool.submit(fn, a))
                break
            yield result


def decode_for_store(path: Path, media: MediaConfig) -> Decoded:
    """Decode one file as the store keeps it (audio in the store dtype), with its CRC-32s."""
    try:
        clip = decode_clip(path, media)
    except MediaError as err:
        return err.reason
    except OSError as err:  # the OS refusing the file (permissions, I/O error) is a reason, not a crash
        return f"cannot read: {err.strerror or err}"
    frames = np.ascontiguousarray(clip.frames, dtype=np.uint8)  # [T, H, W, 3]
    audio = np.ascontiguousarray(clip.audio, dtype=AUDIO_DTYPES[media.audio_dtype])  # [N]
    entry = StoreEntry(frames, audio, clip.sample_rate, clip.audio_missing, clip.duration_s, clip.frame_times)
    return entry, (crc32(frames), crc32(audio))


def build_store(
    items: list[tuple[str, Path]],
    media: MediaConfig,
    directory: str | Path,
    num_workers: int = 0,
    progress: bool = True,
) -> dict[str, str]:
    """Write the store of `items` (media key, file path) to `directory`; return {key: reason} of
    the files that could not be stored. Duplicate keys are decoded once."""
    unique = list(dict(items).items())
    writer = StoreWriter(directory, media.model_dump(mode="json"))
    failures: dict[str, str] = {}
    decode = partial(decode_for_store, media=media)
    bar = tqdm(total=len(unique), desc="media store", unit="clip", disable=not progress)
    results = ordered_map(decode, [path for _, path in unique], num_workers)
    for (key, _), result in zip(unique, results, strict=True):
        if isinstance(result, str):
            failures[key] = result
        else:
            writer.add(key, *result)
        bar.update(1)
    bar.close()
    writer.commit()
    return failures
