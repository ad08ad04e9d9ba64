"""Flow `nightly-eval` (deployment `nightly`): re-evaluate the latest checkpoints and log the history.

The evaluation stage is forced (`dvc repro --force --single-item evaluate`), so it runs even when
DVC considers it up to date: the point is a fresh measurement of the current checkpoints (with new
benchmark data or a changed evaluation environment the numbers can move while the inputs DVC
tracks do not). `avatar history` then appends the result, with each configured benchmark's
official metrics, to results/history.jsonl and re-renders results/history.md and history.png; a
benchmark whose folder is missing is reported there, not fatal. Artifacts, push and the dvc.lock
record follow as in `avatar`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from avatar_core.config import load_config
from tasks.artifacts import publish_artifacts
from tasks.history import append_history
from tasks.remote import push_outputs, record_run
from tasks.stages import run_stage

EVALUATE_STAGE = "evaluate"


@flow(name="nightly-eval", log_prints=True)
def nightly_eval(root: str = ".") -> str:
    """Forced re-evaluation plus a history entry in the repository at `root`; returns the history line."""
    root = str(Path(root).resolve())
    cfg = load_config(Path(root) / "params.yaml")
    run_stage(EVALUATE_STAGE, root, force=True)
    line = append_history(root)
    publish_artifacts(root)
    if cfg.remote.push_after_run:
        push_outputs(root)
    record_run(root, message="nightly evaluation")
    return line


if __name__ == "__main__":
    nightly_eval()
