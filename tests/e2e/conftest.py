"""End-to-end fixtures: a throwaway copy of this repository (git init + commit) whose params.yaml is
the real one with tests/e2e/params_reduced.yaml deep-merged on top, and helpers to run commands in it."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.stages import CURRICULUM

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REDUCED = Path(__file__).with_name("params_reduced.yaml")

TEST_ENV = {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "GIT_AUTHOR_NAME": "e2e",
    "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
    "GIT_COMMITTER_NAME": "e2e",
    "GIT_COMMITTER_EMAIL": "e2e@example.invalid",
}


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def env() -> dict[str, str]:
    return {**os.environ, **TEST_ENV, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def sh(cmd: list[str], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env(), timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def copy_repo(dest: Path) -> Path:
    """Tracked and untracked-but-not-ignored files of the repository, committed in a fresh git repo."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO_ROOT / rel
        if src.is_file() and not rel.startswith((".dvc/cache", ".dvc/tmp", ".dvc/storage")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    reduced = deep_merge(params, yaml.safe_load(REDUCED.read_text()))
    (dest / "params.yaml").write_text(yaml.safe_dump(reduced, sort_keys=False))
    for lock in ("dvc.lock",):
        (dest / lock).unlink(missing_ok=True)
    sh(["git", "init", "-q", "-b", "main"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-q", "-m", "baseline"], dest)
    return dest


@dataclass
class BuiltRepo:
    root: Path
    first_repro_s: float


@pytest.fixture(scope="session")
def built_repo(tmp_path_factory: pytest.TempPathFactory) -> BuiltRepo:
    """A copy of the repository on the reduced config after `dvc repro evaluate`: the whole
    curriculum, not the ablation study (shared: minutes)."""
    if importlib.util.find_spec("avatar_core.recipes.rl") is None:
        pytest.skip("avatar_core.recipes.rl is not written yet")
    root = copy_repo(tmp_path_factory.mktemp("e2e") / "repo")
    start = time.perf_counter()
    out = sh([str(VENV_BIN / "dvc"), "repro", "evaluate"], root).stdout
    assert sorted(ran_stages(out)) == sorted(CURRICULUM)
    return BuiltRepo(root, time.perf_counter() - start)


def ran_stages(dvc_output: str) -> list[str]:
    """Stage names from `dvc repro` output lines "Running stage 'name':"."""
    return re.findall(r"Running stage '([^']+)'", dvc_output)


def set_param(root: Path, dotted: str, value: Any) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    node = params
    *parents, last = dotted.split(".")
    for part in parents:  # a stage override may not name the key yet (rl.defaults holds it)
        node = node.setdefault(part, {})
    node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
