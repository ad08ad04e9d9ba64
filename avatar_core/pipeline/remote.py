"""The DVC remote that stores data and checkpoints, configured from the `remote:` section of params.yaml.

With `remote.url` empty the repository's default remote applies: `.dvc/config` names `local`, a
folder inside `.dvc/` that git ignores, so `dvc push` works out of the box. With an `s3://` URL
(AWS, or any S3-compatible store through `remote.endpoint_url`, e.g. MinIO or SeaweedFS) the remote
`params-s3` is written to `.dvc/config.local`, which git ignores, so params.yaml stays the one
place the value lives and the committed config does not churn. Credentials are never written by
this module: boto3 reads them from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or
from the AWS profile named by `remote.profile`; a URL carrying `user:password@` is rejected.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from avatar_core.config import RemoteConfig
from avatar_core.pipeline.dvc_repo import PipelineError, open_repo

PARAMS_REMOTE = "params-s3"


class RemoteConfigError(ValueError):
    """A `remote:` value that cannot be used; the message names the params key and the value."""


def _check_no_credentials(key: str, url: str) -> None:
    if "@" in urlsplit(url).netloc:
        raise RemoteConfigError(
            f"remote.{key}: {url!r} embeds credentials; put them in the environment "
            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or an AWS profile (remote.profile)"
        )


def validate_remote(remote: RemoteConfig) -> None:
    """Raise RemoteConfigError naming the key when `remote:` cannot configure a DVC remote."""
    if not remote.url:
        if remote.endpoint_url or remote.profile:
            raise RemoteConfigError(
                "remote.endpoint_url/profile are set but remote.url is empty; set remote.url"
            )
        return
    scheme = urlsplit(remote.url).scheme
    if scheme != "s3":
        raise RemoteConfigError(
            f"remote.url: unsupported scheme {scheme or '(none)'!r} in {remote.url!r}; "
            "use s3://bucket/prefix, or leave it empty for the default local remote"
        )
    if not urlsplit(remote.url).netloc:
        raise RemoteConfigError(f"remote.url: {remote.url!r} has no bucket; use s3://bucket/prefix")
    _check_no_credentials("url", remote.url)
    if remote.endpoint_url:
        endpoint = urlsplit(remote.endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise RemoteConfigError(
                f"remote.endpoint_url: {remote.endpoint_url!r} must be an http(s)://host:port URL"
            )
        _check_no_credentials("endpoint_url", remote.endpoint_url)


def configure_remote(root: str | Path, remote: RemoteConfig) -> str | None:
    """Point DVC at the remote params.yaml names; returns its name (None: the repo's default remote).

    The s3 remote goes to `.dvc/config.local` (git-ignored) with url, endpointurl and profile only.
    """
    validate_remote(remote)
    with open_repo(root) as repo:
        if not remote.url:
            with repo.config.edit("local") as local:
                local.get("remote", {}).pop(PARAMS_REMOTE, None)
            default = repo.config["core"].get("remote")
            if not default:
                raise PipelineError(f"{repo.root_dir}/.dvc/config names no default remote (core.remote)")
            return None
        with repo.config.edit("local") as local:
            section: dict[str, str] = {"url": remote.url}
            if remote.endpoint_url:
                section["endpointurl"] = remote.endpoint_url
            if remote.profile:
                section["profile"] = remote.profile
            local.setdefault("remote", {})[PARAMS_REMOTE] = section
    return PARAMS_REMOTE


def _describe(repo, remote_name: str | None) -> str:
    name = remote_name or repo.config["core"].get("remote") or "(default)"
    url = repo.config.get("remote", {}).get(name, {}).get("url", "")
    return f"{name!r} ({url})" if url else repr(name)


def push(root: str | Path, remote_name: str | None = None, jobs: int | None = None) -> int:
    """`dvc push` of every cached output to `remote_name` (None: the default); returns files sent.

    Any failure (server down after the S3 client's own retries, bad credentials, missing bucket)
    raises PipelineError naming the remote and its URL. A failed push never modifies the local
    cache or workspace, so it can simply be retried.
    """
    with open_repo(root) as repo:
        target = _describe(repo, remote_name)
        try:
            return repo.push(remote=remote_name, jobs=jobs)
        except Exception as err:  # DvcException, botocore and aiohttp errors alike
            raise PipelineError(f"dvc push to remote {target} failed: {type(err).__name__}: {err}") from err


def pull(root: str | Path, remote_name: str | None = None, jobs: int | None = None) -> int:
    """`dvc pull` of every output from `remote_name`; returns the number of files fetched."""
    with open_repo(root) as repo:
        target = _describe(repo, remote_name)
        try:
            result = repo.pull(remote=remote_name, jobs=jobs)
        except Exception as err:
            raise PipelineError(f"dvc pull from remote {target} failed: {type(err).__name__}: {err}") from err
    # DVC returns {"stats": {"fetched": n, "added": [...], ...}, ...}
    return int(result.get("stats", {}).get("fetched", 0))
