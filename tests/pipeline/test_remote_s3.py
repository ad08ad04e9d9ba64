"""The DVC remote on a real S3-compatible server (SeaweedFS on loopback): configuration from the
`remote:` section, a byte-identical push / wipe / pull round trip, and a push to a stopped server
that fails clearly while the local cache and workspace stay intact."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from avatar_core.config import RemoteConfig
from avatar_core.pipeline.dvc_repo import PipelineError
from avatar_core.pipeline.remote import (
    PARAMS_REMOTE,
    RemoteConfigError,
    configure_remote,
    pull,
    validate_remote,
)
from tasks.remote import push_outputs

from .s3_server import ACCESS_KEY, SECRET_KEY, S3Server, free_ports, start_s3_server


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials from the environment only; no profile or config file of the machine leaks in."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _checkpoint(folder: Path) -> dict[str, str]:
    """A fake checkpoint of a few MB (deterministic bytes); returns file -> sha256."""
    folder.mkdir(parents=True)
    block = hashlib.sha256(b"avatar").digest() * 32768  # 1 MiB
    files = {
        "model.safetensors": block * 3,
        "optimizer.safetensors": block[::-1] * 2,
        "state.json": b'{"step": 7}',
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return _digests(folder)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _cache_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (root / ".dvc" / "cache").rglob("*") if p.is_file()}  # fmt: skip


def _tracked_repo(
    make_repo: Callable[[dict[str, str]], Path], remote: dict[str, object]
) -> tuple[Path, dict]:
    root = make_repo({"params.yaml": yaml.safe_dump({"remote": remote})})
    digests = _checkpoint(root / "checkpoints" / "s1")
    with Repo(str(root)) as repo:
        repo.add(str(root / "checkpoints" / "s1"))
    return root, digests


@pytest.mark.slow
def test_round_trip_is_byte_identical(s3: S3Server, make_repo) -> None:
    url = f"s3://{s3.bucket}/dvc"
    root, digests = _tracked_repo(make_repo, {"url": url, "endpoint_url": s3.endpoint})
    committed_config = (root / ".dvc" / "config").read_text()

    assert push_outputs.fn(str(root)) == 4  # three files and the folder manifest
    local = (root / ".dvc" / "config.local").read_text()
    assert f"url = {url}" in local and f"endpointurl = {s3.endpoint}" in local
    assert ACCESS_KEY not in local and SECRET_KEY not in local
    assert (root / ".dvc" / "config").read_text() == committed_config  # nothing written to git

    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "checkpoints" / "s1")
    assert pull(root, PARAMS_REMOTE) == 4
    assert _digests(root / "checkpoints" / "s1") == digests


@pytest.mark.slow
def test_push_to_a_stopped_server_fails_clearly_and_keeps_everything(
    make_repo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start_s3_server(tmp_path_factory.mktemp("s3-stopped"))
    root, digests = _tracked_repo(
        make_repo, {"url": f"s3://{server.bucket}/dvc", "endpoint_url": server.endpoint}
    )
    before = _cache_files(root)
    server.stop()
    start = time.monotonic()
    message = rf"dvc push to remote 'params-s3' \(s3://avatar/dvc\) failed: .*Could not connect to the endpoint URL: \"{server.endpoint}/"
    with pytest.raises(PipelineError, match=message):
        push_outputs.fn(str(root))
    assert time.monotonic() - start < 120
    assert _cache_files(root) == before and len(before) == 4
    assert _digests(root / "checkpoints" / "s1") == digests


def test_empty_url_uses_the_default_remote_and_drops_a_stale_s3_one(s3: S3Server, make_repo) -> None:
    root = make_repo({"params.yaml": "{}\n"})
    assert (
        configure_remote(root, RemoteConfig(url=f"s3://{s3.bucket}/x", endpoint_url=s3.endpoint))
        == PARAMS_REMOTE
    )
    with pytest.raises(PipelineError, match=r"\.dvc/config names no default remote"):
        configure_remote(root, RemoteConfig())
    assert PARAMS_REMOTE not in (root / ".dvc" / "config.local").read_text()


@pytest.mark.parametrize(
    ("remote", "message"),
    [
        ({"url": "gs://bucket/x"}, r"remote\.url: unsupported scheme 'gs' in 'gs://bucket/x'"),
        ({"url": "/srv/dvc"}, r"remote\.url: unsupported scheme '\(none\)'"),
        ({"url": "s3:///prefix"}, r"remote\.url: 's3:///prefix' has no bucket"),
        ({"url": "s3://key:secret@bucket/x"}, r"remote\.url: .* embeds credentials"),
        (
            {"url": "s3://b/x", "endpoint_url": "127.0.0.1:9000"},
            r"remote\.endpoint_url: '127\.0\.0\.1:9000' must be",
        ),
        (
            {"url": "s3://b/x", "endpoint_url": "http://k:s@host:1"},
            r"remote\.endpoint_url: .* embeds credentials",
        ),
        ({"endpoint_url": "http://host:1"}, r"remote\.url is empty"),
    ],
)
def test_bad_remote_settings_name_the_key(remote: dict[str, str], message: str) -> None:
    with pytest.raises(RemoteConfigError, match=message):
        validate_remote(RemoteConfig(**remote))


def test_server_ports_never_collide_with_a_grpc_twin() -> None:
    """weed refuses to start when a service port equals another's gRPC port (port + 10000)."""
    offered = iter([36841, 46841, 26841, 36841, 60000, 40001, 40002, 40003])
    ports = free_ports(4, pick=lambda: next(offered))
    # 46841 is 36841's twin, 26841's twin is 36841, a repeat is skipped, 60000's twin is out of range.
    assert ports == [36841, 40001, 40002, 40003]
