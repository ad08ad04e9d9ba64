"""Fixtures for the pipeline tests: throwaway git + DVC repositories, telemetry off."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from dvc.repo import Repo

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "pipeline-test",
    "GIT_AUTHOR_EMAIL": "pipeline-test@example.invalid",
    "GIT_COMMITTER_NAME": "pipeline-test",
    "GIT_COMMITTER_EMAIL": "pipeline-test@example.invalid",
}

REPO_ROOT = Path(__file__).resolve().parents[2]
DVC = str(Path(sys.executable).with_name("dvc"))


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Create a git + DVC repository holding `files` (path -> text), committed; returns its root."""

    def build(files: dict[str, str]) -> Path:
        root = tmp_path / "repo"
        root.mkdir()
        run(["git", "init", "-q", "-b", "main"], root)
        with Repo.init(str(root)) as repo, repo.config.edit() as config:
            config["core"]["analytics"] = False
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        run(["git", "add", "-A"], root)
        run(["git", "commit", "-q", "-m", "baseline"], root)
        return root

    return build
