"""Prefect tasks of the ablation flow: one cell as an `avatar ablate` process, and recording the
cells in dvc.lock. No ML code lives here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect import task

from avatar_core.pipeline.dvc_repo import commit_stages
from tasks.stages import task_logger


@task(
    name="ablation-cell",
    task_run_name="cell {setting}/{variant}/seed-{seed}",
    retries=1,
    retry_delay_seconds=10,
)
def run_cell(setting: str, variant: str, seed: int, root: str = ".", params: str = "params.yaml") -> str:
    """Run one cell in its own process (a finished cell returns at once; a killed one resumes)."""
    command = [sys.executable, "-m", "avatar_core.cli", "ablate", "--setting", setting, "--variant", variant]
    command += ["--seed", str(seed), "--params", params, "--no-progress"]
    done = subprocess.run(command, cwd=root, env=os.environ.copy(), capture_output=True, text=True)
    name = f"{setting}/{variant}/seed-{seed}"
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-20:])
        raise RuntimeError(f"ablation cell {name} failed (exit {done.returncode}):\n{tail}")
    task_logger().info("ablation cell %s finished", name)
    return name


@task(name="record-cells", retries=1, retry_delay_seconds=5)
def record_cells(stages: list[str], root: str = ".") -> None:
    """`dvc commit` the cell stages that ran outside DVC, so `dvc repro` finds them up to date."""
    commit_stages(Path(root), stages)
    task_logger().info("recorded %d cell stages in dvc.lock", len(stages))
