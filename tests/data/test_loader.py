"""The clip loader: a byte-bounded LRU cache, background reads that only warm it, blanking as a
transform of what it returns, and store errors that name the sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar_core.config import MediaConfig
from avatar_core.data.datasets_io import load_split
from avatar_core.data.loader import ClipLoader, DecodeSource, StoreSource, blank, clip_bytes
from avatar_core.data.store import StoreError, store_dir
from avatar_core.data.store_build import build_store

MEDIA = MediaConfig()


@pytest.fixture(scope="module")
def stored(tiny_synthetic, tmp_path_factory) -> dict:
    """The tiny synthetic set's train clips in a media store (data folder separate from the media)."""
    data_dir = tmp_path_factory.mktemp("loader_data")
    samples = load_split(tiny_synthetic, "train")
    items = [(s.video, tiny_synthetic / s.video) for s in samples]
    assert build_store(items, MEDIA, store_dir(data_dir), progress=False) == {}
    return {"data_dir": data_dir, "root": tiny_synthetic, "samples": samples}


def _loader(stored: dict, cache_bytes: int, threads: int = 1) -> ClipLoader:
    return ClipLoader(StoreSource(stored["data_dir"], stored["root"], MEDIA), cache_bytes, threads)


def _one_clip_bytes(stored: dict) -> int:
    with _loader(stored, 0, threads=0) as probe:
        return clip_bytes(probe.get(stored["samples"][0]))


@pytest.mark.parametrize("threads", [0, 1])
def test_cache_stays_within_its_limit_on_data_larger_than_it(stored, threads):
    samples, size = stored["samples"], _one_clip_bytes(stored)
    limit = 3 * size + size // 2  # room for 3 of the 16 clips
    with _loader(stored, limit, threads) as loader:
        for _ in range(2):  # two epochs, batches of 4, the next batch prefetched as a recipe does
            for i in range(0, len(samples), 4):
                loader.prefetch(samples[i + 4 : i + 8])
                clips = loader.get_many(samples[i : i + 4])
                assert all(c.frames.shape == (4, 56, 56, 3) for c in clips)
                assert loader.stats.cached_bytes <= limit
        # a cyclic scan over 16 clips through a 3-clip LRU cache misses every time: 2 reads per clip
        assert loader.stats.loads == 2 * len(samples)
        assert loader.stats.peak_cached_bytes == 3 * size
        assert loader.stats.peak_pending <= (8 if threads else 0)


def test_cache_large_enough_reads_each_clip_once(stored):
    samples = stored["samples"]
    with _loader(stored, 10**9) as loader:
        first = loader.get_many(samples)
        again = loader.get_many(samples)
        assert loader.stats.loads == len(samples) and loader.stats.hits == len(samples)
        assert all(a is b for a, b in zip(first, again, strict=True))
        assert loader.stats.cached_bytes == sum(clip_bytes(c) for c in first)


def test_zero_cache_keeps_nothing(stored):
    samples = stored["samples"][:3]
    with _loader(stored, 0, threads=0) as loader:
        loader.get_many(samples + samples)
        assert loader.stats.loads == 6 and loader.stats.peak_cached_bytes == 0


def test_prefetch_only_warms_and_drops_guesses_nobody_used(stored):
    samples = stored["samples"]
    with _loader(stored, 0) as loader:
        loader.prefetch(samples[0:2])
        assert [c.path for c in loader.get_many(samples[0:2])] == [
            str(stored["root"] / s.video) for s in samples[0:2]
        ]
        assert loader.stats.loads == 2 and loader.stats.hits + loader.stats.waits == 2
        for start in (4, 6, 8, 10):  # wrong guesses: only the last two sets stay pending
            loader.prefetch(samples[start : start + 2])
        assert loader.stats.peak_pending == 4
        assert sorted(loader._pending) == sorted(s.video for s in samples[8:12])
        # never prefetched: read on demand, once (the pending guesses may finish meanwhile on the
        # background thread, so count the reads of this clip, not all reads)
        reads: list[str] = []
        load = loader.source.load
        loader.source.load = lambda key, sample_id: (reads.append(key), load(key, sample_id))[1]
        clip = loader.get(samples[12])
        assert clip.path == str(stored["root"] / samples[12].video)
        assert reads.count(samples[12].video) == 1


def test_text_only_samples_have_no_clip(stored):
    from dataclasses import replace

    text_only = replace(stored["samples"][0], video="")
    with _loader(stored, 10**6) as loader:
        assert loader.get(text_only) is None and loader.stats.loads == 0


def test_store_and_decode_sources_agree(stored):
    sample = stored["samples"][5]
    from_store = StoreSource(stored["data_dir"], stored["root"], MEDIA).load(sample.video, sample.id)
    decoded = DecodeSource(stored["root"], MEDIA).load(sample.video, sample.id)
    np.testing.assert_array_equal(from_store.frames, decoded.frames)
    np.testing.assert_array_equal(from_store.audio, decoded.audio)
    np.testing.assert_array_equal(from_store.frame_times, decoded.frame_times)
    assert from_store.path == decoded.path and from_store.duration_s == decoded.duration_s


def test_blank_and_blanked_views(stored):
    samples = stored["samples"][:2]
    with _loader(stored, 10**9) as loader:
        clip = loader.get(samples[0])
        video_off = blank(clip, video=True, audio=False)
        assert not video_off.frames.any() and video_off.frames.shape == clip.frames.shape
        np.testing.assert_array_equal(video_off.audio, clip.audio)
        audio_off = blank(clip, video=False, audio=True)
        assert not audio_off.audio.any() and audio_off.audio.shape == clip.audio.shape
        np.testing.assert_array_equal(audio_off.frames, clip.frames)
        assert clip.frames.any() and clip.audio.any()  # the cached clip itself is untouched
        both = loader.blanked().get_many(samples)
        assert all(not c.frames.any() and not c.audio.any() for c in both)
        assert loader.stats.loads == 2  # the control reused the cache: nothing read twice


def test_corrupt_entry_read_through_the_loader_names_the_sample(stored, tmp_path):
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(store_dir(stored["data_dir"]), store_dir(data_dir))
    frames = store_dir(data_dir) / "frames.bin"
    data = bytearray(frames.read_bytes())
    data[-5] ^= 0xFF  # the last entry's frames
    frames.write_bytes(bytes(data))
    last = stored["samples"][-1]
    with ClipLoader(StoreSource(data_dir, stored["root"], MEDIA), 10**9) as loader:
        loader.prefetch([last])  # the background read fails; the error surfaces when asked for
        with pytest.raises(StoreError, match=rf"sample '{last.id}' \(media '{last.video}'\).*corrupt"):
            loader.get(last)
        assert loader.get(stored["samples"][0]).frames.shape == (4, 56, 56, 3)


def test_store_with_other_settings_is_refused(stored):
    with pytest.raises(StoreError, match="n_frames: store 4, params 8"):
        StoreSource(stored["data_dir"], stored["root"], MediaConfig(n_frames=8))
    with pytest.raises(ValueError, match="cache_bytes must be >= 0"):
        ClipLoader(DecodeSource(Path("."), MEDIA), -1)
