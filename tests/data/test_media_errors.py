"""Every bad-media case gives a MediaError that names the file and the reason."""

from __future__ import annotations

import os
import pickle

import av
import numpy as np
import pytest

from avatar_core.data.media import MediaError, load_clip, resolve_media_path

BACKENDS = ["decord", "pyav"]


def _expect(path, reason: str, **kwargs) -> MediaError:
    with pytest.raises(MediaError) as info:
        load_clip(path, **kwargs)
    err = info.value
    assert err.path == str(path) and str(err).startswith(f"{path}: "), str(err)
    assert reason in err.reason, err.reason
    return err


def test_media_error_carries_path_and_reason_across_processes():
    err = MediaError("clips/a.mp4", "file not found")
    assert str(err) == "clips/a.mp4: file not found" and isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.reason, str(copy)) == (err.path, err.reason, str(err))


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_file(tmp_path, backend):
    _expect(tmp_path / "nope.mp4", "file not found", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_garbage_and_empty_files(tmp_path, backend):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _expect(garbage, "cannot be opened as media", backend=backend)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _expect(empty, "cannot be opened as media", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99, 0.999])
def test_truncated_file(media_dir, tmp_path, backend, keep):
    """Our MP4s keep the index (moov) at the end. FFmpeg refuses most cut files, but opens some
    (a cut inside the audio track's index drops the audio stream silently): the box walk of the
    probe catches those."""
    data = (media_dir / "indexed.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep)])
    _expect(cut, "truncated", backend=backend)


def test_truncated_file_names_the_box(media_dir, tmp_path):
    data = (media_dir / "indexed.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:-7])
    _expect(cut, f"truncated or corrupt file: box moov at byte {data.rindex(b'moov') - 4}")


def _remux(source, target, fmt, options=None):
    with av.open(str(source)) as src, av.open(str(target), "w", format=fmt, options=options or {}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_with_index_first(media_dir, tmp_path, backend):
    """With the index first (faststart) a cut file opens; its media data box is short."""
    full = tmp_path / "faststart.mp4"
    _remux(media_dir / "indexed.mp4", full, "mp4", {"movflags": "faststart"})
    assert load_clip(full, n_frames=16, backend=backend).frames.shape[0] == 16
    cut = tmp_path / "cut_faststart.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    _expect(cut, "truncated or corrupt file: box mdat", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_matroska(media_dir, tmp_path, backend):
    """Matroska has no frame index: frames are counted and compared with the declared length."""
    full = tmp_path / "clip.mkv"
    _remux(media_dir / "indexed.mp4", full, "matroska")
    assert load_clip(full, n_frames=16, backend=backend).frames.shape[0] == 16
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    _expect(cut, "truncated video: the container declares 2.06s at 8 fps but holds 8 frames", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_length_clip(tmp_path, backend):
    """A Matroska file whose video track holds no frames (MP4 muxers drop empty tracks)."""
    path = tmp_path / "zero.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        video = container.add_stream("libx264", rate=8)
        video.width = video.height = 56
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, 0
        container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
        container.mux(video.encode(None))
    _expect(path, "zero-length clip", backend=backend)


def test_audio_only_file(tmp_path):
    path = tmp_path / "audio_only.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, 0
        container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    _expect(path, "no video stream")


def test_resolution_over_limit(media_dir):
    err = _expect(media_dir / "wide.mp4", "resolution 112x84 exceeds max_resolution 100", max_resolution=100)
    assert "112x84" in str(err)
    assert load_clip(media_dir / "wide.mp4", max_resolution=112).frames.shape[0] == 4  # at the limit: fine


def test_duration_over_limit(media_dir):
    _expect(media_dir / "indexed.mp4", "duration 2.0s exceeds max_duration_s 1.5", max_duration_s=1.5)
    assert load_clip(media_dir / "indexed.mp4", max_duration_s=2.0).duration_s == pytest.approx(2.0)


# --------------------------------------------------------------------------- path resolution


def test_resolve_inside_root(tmp_path):
    (tmp_path / "clips").mkdir()
    assert resolve_media_path(tmp_path, "clips/a.mp4") == (tmp_path / "clips" / "a.mp4").resolve()
    assert resolve_media_path(tmp_path, "clips/../b.mp4") == (tmp_path / "b.mp4").resolve()  # stays inside


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("/etc/passwd", "absolute media paths are not allowed"),
        ("../outside.mp4", "path escapes the media root"),
        ("clips/../../outside.mp4", "path escapes the media root"),
        ("", "empty media path"),
    ],
)
def test_resolve_rejects_escapes(tmp_path, relative, reason):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(MediaError, match=reason) as info:
        resolve_media_path(root, relative)
    assert info.value.path == relative


def test_resolve_rejects_symlink_leaving_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    os.symlink(outside, root / "link")
    with pytest.raises(MediaError, match="path escapes the media root") as info:
        resolve_media_path(root, "link/secret.mp4")
    assert "link/secret.mp4" in str(info.value) and str(outside / "secret.mp4") in str(info.value)
    os.symlink(root / "link" / "..", root / "inside_link")  # a link that stays inside is fine
    assert resolve_media_path(root, "inside_link/root") == root.resolve()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("start", [0.1, 0.5])
def test_corrupt_media_data(media_dir, tmp_path, backend, start):
    """Box sizes intact, but the coded frames from `start` of the media data on are zeros."""
    data = bytearray((media_dir / "indexed.mp4").read_bytes())
    mdat, moov = data.index(b"mdat") + 4, data.index(b"moov") - 4  # our MP4s: media data, then the index
    first = mdat + int((moov - mdat) * start)
    data[first:moov] = bytes(moov - first)
    path = tmp_path / "zeroed.mp4"
    path.write_bytes(bytes(data))
    expected = {"decord": "decord cannot decode the video: ", "pyav": "decoding failed after "}[backend]
    err = _expect(path, expected, n_frames=16, backend=backend)
    assert not err.reason.removeprefix(expected).startswith("["), (
        err.reason
    )  # decord's log prefix is stripped
