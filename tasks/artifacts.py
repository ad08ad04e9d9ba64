"""Prefect task that publishes the pipeline's numbers as artifacts in the Prefect UI.

One table artifact per stage from `<metrics_dir>/<stage>/metrics.json`, and one Markdown artifact
of the evaluation (`<eval_dir>/results.md`, or a table built from `results.json`). Reading and
shaping the files is in avatar_core.pipeline.tables; this task only hands the result to Prefect.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from avatar_core.config import load_config
from avatar_core.pipeline.tables import artifact_key, evaluation_markdown, metric_rows, stage_metrics
from tasks.stages import task_logger


@task(name="publish-artifacts", retries=2, retry_delay_seconds=5)
def publish_artifacts(root: str = ".", params: str = "params.yaml") -> list[str]:
    """Create the metric tables and the evaluation report; returns the artifact keys created."""
    root_path = Path(root).resolve()
    cfg = load_config(root_path / params)
    keys: list[str] = []
    for stage, metrics in stage_metrics(root_path / cfg.paths.metrics_dir).items():
        key = artifact_key(f"metrics-{stage}")
        create_table_artifact(
            key=key, table=metric_rows(metrics), description=f"metrics.json of stage {stage}"
        )
        keys.append(key)
    report = evaluation_markdown(root_path / cfg.paths.eval_dir)
    if report is not None:
        create_markdown_artifact(key="evaluation", markdown=report, description="benchmark evaluation")
        keys.append("evaluation")
    task_logger().info("published artifacts: %s", ", ".join(keys) or "none (no metrics yet)")
    return keys
