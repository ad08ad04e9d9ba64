"""Prefect task that runs one DVC stage of dvc.yaml; no ML code lives here.

The stage runs through DVC's Python API (avatar_core.pipeline.dvc_repo), so a flow run and
`dvc repro` execute the same command and skip the same up-to-date stages. The task returns True
when DVC ran the stage and False when it was up to date (and logs "up to date" then).
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import task
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from avatar_core.pipeline.dvc_repo import PipelineError, reproduce_stage

# The curriculum in run order; tests check it against the graph of dvc.yaml.
CURRICULUM: tuple[str, ...] = ("ingest", "hints", "sft", "rl@s1", "rl@s2", "rl@s3", "evaluate")


def task_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a run; a plain logger when called via `task.fn` (tests)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("avatar.tasks")


@task(name="dvc-stage", task_run_name="stage {name}", retries=1, retry_delay_seconds=30)
def run_stage(name: str, root: str = ".", force: bool = False) -> bool:
    """Run DVC stage `name` in the repository at `root`; True if it ran, False if up to date.

    force=True reruns the stage even when DVC considers it up to date.
    """
    logger = task_logger()
    try:
        result = reproduce_stage(Path(root), name, force=force)
    except PipelineError as err:
        for line in err.errors or (f"error: {err}",):  # the lines `avatar` printed, as DVC showed them
            logger.error("stage %s: %s", name, line)
        raise
    if result.up_to_date:
        logger.info("stage %s is up to date (%.2f s)", name, result.seconds)
        return False
    logger.info("stage %s ran %s in %.1f s", name, ", ".join(result.ran), result.seconds)
    return True
