"""The media store: what it returns equals `load_clip` for the same settings, its bytes do not depend
on the worker count, and a corrupt, truncated or missing entry is reported with its sample id."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from avatar_core.config import MediaConfig
from avatar_core.data.media import decode_clip
from avatar_core.data.store import MediaStore, StoreError, store_dir
from avatar_core.data.store_build import build_store

CLIPS = ("indexed.mp4", "silent_track_missing.mp4", "wide.mp4")
SETTINGS = [
    MediaConfig(),  # the embedded default: 4 frames within 56 x 56
    MediaConfig(n_frames=16, max_pixels=112 * 112, sample_rate=8000, backend="pyav"),
]


def _build(media_dir: Path, folder: Path, media: MediaConfig, workers: int = 0) -> dict[str, str]:
    items = [(name, media_dir / name) for name in CLIPS]
    return build_store(items, media, store_dir(folder), num_workers=workers, progress=False)


@pytest.mark.parametrize("media", SETTINGS, ids=["default", "16f_112px_8k_pyav"])
def test_store_returns_exactly_what_load_clip_gives(media_dir, tmp_path, media):
    assert _build(media_dir, tmp_path, media) == {}
    store = MediaStore(store_dir(tmp_path))
    assert sorted(store.keys()) == sorted(CLIPS)
    for name in CLIPS:
        stored, decoded = store.read(name, sample_id="s1"), decode_clip(media_dir / name, media)
        assert stored.frames.dtype == decoded.frames.dtype == np.uint8
        assert stored.audio.dtype == decoded.audio.dtype == np.float32
        np.testing.assert_array_equal(stored.frames, decoded.frames)
        np.testing.assert_array_equal(stored.audio, decoded.audio)
        assert decoded.frame_times is not None and stored.frame_times.dtype == np.float64
        np.testing.assert_array_equal(stored.frame_times, decoded.frame_times)  # [T] seconds
        assert (stored.sample_rate, stored.audio_missing, stored.duration_s) == (
            decoded.sample_rate,
            decoded.audio_missing,
            decoded.duration_s,
        )
        assert store.entry_bytes(name) == decoded.frames.nbytes + decoded.audio.nbytes
    assert store.read("silent_track_missing.mp4").audio_missing  # silence was substituted and flagged
    assert store.read("wide.mp4").frames.shape[1:3] != store.read("indexed.mp4").frames.shape[1:3]


def test_float16_audio_is_the_float32_audio_rounded(media_dir, tmp_path):
    media = MediaConfig(audio_dtype="float16")
    _build(media_dir, tmp_path, media)
    store = MediaStore(store_dir(tmp_path))
    decoded = decode_clip(media_dir / "indexed.mp4", media)
    stored = store.read("indexed.mp4")
    assert stored.audio.dtype == np.float32
    np.testing.assert_array_equal(stored.audio, decoded.audio.astype(np.float16).astype(np.float32))
    assert (store_dir(tmp_path) / "audio.bin").stat().st_size == 2 * sum(
        decode_clip(media_dir / n, media).audio.size for n in CLIPS
    )


def test_worker_count_does_not_change_the_bytes(media_dir, tmp_path):
    _build(media_dir, tmp_path / "serial", MediaConfig(), workers=0)
    _build(media_dir, tmp_path / "parallel", MediaConfig(), workers=2)
    for name in ("frames.bin", "audio.bin", "index.npz", "store.json"):
        serial = (store_dir(tmp_path / "serial") / name).read_bytes()
        assert serial == (store_dir(tmp_path / "parallel") / name).read_bytes(), name


def test_failed_media_are_reported_not_stored(media_dir, tmp_path):
    broken = tmp_path / "media"
    broken.mkdir()
    shutil.copy(media_dir / "indexed.mp4", broken / "good.mp4")
    (broken / "cut.mp4").write_bytes((media_dir / "indexed.mp4").read_bytes()[:3000])
    items = [
        ("good.mp4", broken / "good.mp4"),
        ("cut.mp4", broken / "cut.mp4"),
        ("gone.mp4", broken / "gone.mp4"),
    ]
    failures = build_store(items, MediaConfig(), store_dir(tmp_path), num_workers=2, progress=False)
    assert set(failures) == {"cut.mp4", "gone.mp4"}
    assert "truncated" in failures["cut.mp4"] and failures["gone.mp4"] == "file not found"
    assert MediaStore(store_dir(tmp_path)).keys() == ["good.mp4"]


def _corrupt_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_entry_is_reported_with_its_sample_id(media_dir, tmp_path):
    _build(media_dir, tmp_path, MediaConfig())
    folder = store_dir(tmp_path)
    first_frames = (
        MediaStore(folder).entry_bytes("indexed.mp4") - 4 * MediaStore(folder).read("indexed.mp4").audio.size
    )
    _corrupt_byte(folder / "frames.bin", first_frames + 10)  # inside the second entry's frames
    store = MediaStore(folder)
    store.read("indexed.mp4", "q-ok")  # its neighbour is intact
    with pytest.raises(
        StoreError, match=r"sample 'q-7' \(media 'silent_track_missing.mp4'\).*frames bytes do not match"
    ):
        store.read("silent_track_missing.mp4", sample_id="q-7")
    assert MediaStore(folder, verify=False).read("silent_track_missing.mp4").frames.shape[0] == 4  # unchecked


def test_truncated_store_and_unknown_entry_name_the_sample(media_dir, tmp_path):
    _build(media_dir, tmp_path, MediaConfig())
    folder = store_dir(tmp_path)
    audio = folder / "audio.bin"
    audio.write_bytes(audio.read_bytes()[:1000])
    store = MediaStore(folder)
    with pytest.raises(StoreError, match=r"sample 'q-3' \(media 'wide.mp4'\).*outside audio.bin.*truncated"):
        store.read("wide.mp4", sample_id="q-3")
    with pytest.raises(StoreError, match=r"sample 'q-9' \(media 'other.mp4'\).*no entry in the media store"):
        store.read("other.mp4", sample_id="q-9")


def test_store_checks_its_settings_and_presence(media_dir, tmp_path):
    with pytest.raises(StoreError, match="no media store here; run `avatar ingest`"):
        MediaStore(store_dir(tmp_path))
    _build(media_dir, tmp_path, MediaConfig())
    store = MediaStore(store_dir(tmp_path))
    store.check_settings(MediaConfig().model_dump(mode="json"))
    with pytest.raises(
        StoreError, match=r"max_pixels: store 3136, params 12544; n_frames: store 4, params 16.*rerun ingest"
    ):
        store.check_settings(MediaConfig(n_frames=16, max_pixels=112 * 112).model_dump(mode="json"))
    (store_dir(tmp_path) / "index.npz").write_bytes(b"not an index")
    with pytest.raises(StoreError, match="unreadable store manifest or index"):
        MediaStore(store_dir(tmp_path))


@pytest.mark.parametrize("old_format", [1, 2])
def test_store_of_another_format_is_refused_with_the_fix(media_dir, tmp_path, old_format):
    """A store written before frame times were kept (format 1) or while frames were resized by PIL
    (format 2) must be rebuilt, not read as if load_clip would give the same frames."""
    import json

    _build(media_dir, tmp_path, MediaConfig())
    manifest_path = store_dir(tmp_path) / "store.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"format": old_format}))
    with pytest.raises(StoreError, match=rf"store format {old_format}, this version reads 3; rerun ingest"):
        MediaStore(store_dir(tmp_path))
