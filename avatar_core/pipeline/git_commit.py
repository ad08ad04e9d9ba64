"""Record a pipeline run in git: dvc.lock plus the small outputs git keeps (metrics, plots, evaluation
tables, the nightly history).

dvc.lock is the provenance (which code, params and inputs made each artifact); a run is only
reproducible by others once it is committed. `pending_files` lists what changed; `commit_advice`
is the command a person should run; `commit_to_branch` commits those files on a named branch
without touching the checkout when another branch is checked out (git plumbing on a temporary
index: read-tree, add, write-tree, commit-tree, update-ref with the old value as a guard).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from avatar_core.pipeline.dvc_repo import PipelineError

ALWAYS_RECORDED = (
    "dvc.lock",
    "dvc.yaml",
    "params.yaml",
    "results/history.jsonl",
    "results/history.md",
    "results/history.png",
)


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode:
        raise PipelineError(
            f"git {' '.join(args)} failed in {root}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout.strip()


def pending_files(root: str | Path, outputs: list[str]) -> list[str]:
    """Paths among dvc.lock, the history files and `outputs` (git-tracked DVC outputs) that differ
    from HEAD or are new and not ignored, relative to `root`."""
    root = Path(root)
    candidates = [p for p in (*ALWAYS_RECORDED, *outputs) if (root / p).exists()]
    if not candidates:
        return []
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *candidates)
    changed = {line[3:].strip().strip('"') for line in status.splitlines() if line}
    # Report the configured path (a folder output like results/eval) rather than each file inside.
    return [p for p in candidates if any(c == p or c.startswith(p.rstrip("/") + "/") for c in changed)]


def commit_advice(files: list[str]) -> str:
    """What to run so the run becomes reproducible by others ('' when nothing changed)."""
    if not files:
        return ""
    joined = " ".join(files)
    return f"git add {joined} && git commit -m 'pipeline run: update dvc.lock and metrics' -- {joined}"


def current_branch(root: str | Path) -> str:
    """The checked-out branch ('' on a detached HEAD)."""
    proc = subprocess.run(
        ["git", "symbolic-ref", "--quiet", "--short", "HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip()


def commit_to_branch(root: str | Path, branch: str, files: list[str], message: str) -> str | None:
    """Commit `files` (their working-tree content) on `branch`; returns the commit id, or None when
    the branch already holds exactly that content. A missing branch starts from HEAD."""
    root = Path(root)
    if not branch or branch.startswith("-") or " " in branch:
        raise PipelineError(f"remote.commit_branch: {branch!r} is not a usable branch name")
    if not files:
        return None
    if current_branch(root) == branch:
        _git(root, "add", "--", *files)
        if not _git(root, "diff", "--cached", "--name-only", "--", *files):
            return None
        _git(root, "commit", "-m", message, "--", *files)
        return _git(root, "rev-parse", "HEAD")
    ref = f"refs/heads/{branch}"
    exists = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", ref],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    parent = exists.stdout.strip() if exists.returncode == 0 else _git(root, "rev-parse", "HEAD")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(root, "read-tree", parent, env=env)
        _git(root, "add", "--", *files, env=env)
        tree = _git(root, "write-tree", env=env)
    if tree == _git(root, "rev-parse", f"{parent}^{{tree}}"):
        return None
    commit = _git(root, "commit-tree", tree, "-p", parent, "-m", message)
    old = parent if exists.returncode == 0 else ""
    _git(root, "update-ref", ref, commit, *([old] if old else ["0" * 40]))
    return commit
