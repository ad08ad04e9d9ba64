"""Prefect tasks that move a run's results out of the machine: `dvc push` and git recording.

`push_outputs` configures the DVC remote from params.yaml `remote:` (credentials only from the
environment or the AWS profile) and pushes every cached output; it retries, since a remote that
is briefly unreachable is the common failure and a failed push changes nothing locally.
`record_run` commits dvc.lock and the git-tracked results on `remote.commit_branch` when one is
configured, and otherwise logs the exact `git add/commit` command to run.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

from avatar_core.config import load_config
from avatar_core.pipeline.dvc_repo import git_tracked_outputs
from avatar_core.pipeline.git_commit import commit_advice, commit_to_branch, pending_files
from avatar_core.pipeline.remote import configure_remote, push
from tasks.stages import task_logger


@task(name="dvc-push", retries=3, retry_delay_seconds=[10, 30, 60])
def push_outputs(root: str = ".", params: str = "params.yaml") -> int:
    """`dvc push` to the remote params.yaml names; returns the number of files transferred."""
    root_path = Path(root).resolve()
    cfg = load_config(root_path / params)
    name = configure_remote(root_path, cfg.remote)
    sent = push(root_path, name)
    task_logger().info("dvc push to %s: %d files", name or "the default remote", sent)
    return sent


@task(name="record-run", retries=1, retry_delay_seconds=5)
def record_run(root: str = ".", params: str = "params.yaml", message: str = "pipeline run") -> str:
    """Commit dvc.lock and tracked results on `remote.commit_branch`, or say what to commit.

    Returns the new commit id, the advice text, or '' when nothing changed.
    """
    root_path = Path(root).resolve()
    cfg = load_config(root_path / params)
    files = pending_files(root_path, git_tracked_outputs(root_path))
    logger = task_logger()
    if not files:
        logger.info("nothing to commit: dvc.lock and the tracked results match git")
        return ""
    if cfg.remote.commit_branch:
        commit = commit_to_branch(
            root_path, cfg.remote.commit_branch, files, f"{message}: dvc.lock and results"
        )
        logger.info("committed %s on %s: %s", ", ".join(files), cfg.remote.commit_branch, commit)
        return commit or ""
    advice = commit_advice(files)
    logger.warning("dvc.lock/results changed; to make this run reproducible by others: %s", advice)
    return advice
