"""Prefect task that appends the latest evaluation to the nightly history via `avatar history`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prefect import task

from tasks.stages import task_logger


@task(name="append-history", retries=1, retry_delay_seconds=5)
def append_history(root: str = ".", params: str = "params.yaml") -> str:
    """Run `avatar history --params <params>` in `root`; returns its output line."""
    proc = subprocess.run(
        [sys.executable, "-m", "avatar_core.cli", "history", "--params", params],
        cwd=Path(root).resolve(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(
            f"avatar history failed (exit {proc.returncode}) in {root}: {proc.stderr.strip()[-2000:]}"
        )
    task_logger().info(proc.stdout.strip())
    return proc.stdout.strip()
