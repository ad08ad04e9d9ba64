"""Flow `ablation` (deployment `avatar/ablation`): the AVATAR vs GRPO study as tracked Prefect tasks.

The start checkpoint's stages first (ingest, hints, sft: DVC skips them when up to date), then every
cell of every setting as an `ablation-cell` task, `ablation.workers` at a time, then the cells are
recorded in dvc.lock (`dvc commit`), the `ablation` stage writes the summary, and the summary table
is published as a Prefect artifact. `dvc repro ablation` runs the same cells one after another (DVC
runs one stage at a time); this flow runs them side by side. The flow only orders tasks.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from avatar_core.config import load_config
from tasks.ablation import record_cells, run_cell
from tasks.stages import run_stage

START_STAGES = ("ingest", "hints", "sft")


@flow(name="ablation", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=16))
def ablation(root: str = ".", workers: int | None = None) -> dict[str, list[str]]:
    """Run every cell not yet finished, then the summary; returns setting -> cells run."""
    root = str(Path(root).resolve())
    cfg = load_config(Path(root) / "params.yaml")
    for name in START_STAGES:
        run_stage(name, root)
    cells = [
        (setting, variant, seed)
        for setting, spec in cfg.ablation.settings.items()
        for variant in spec.variants
        for seed in cfg.ablation.seeds
    ]
    limit = workers or cfg.ablation.workers
    running, done = [], []
    for cell in cells:  # a sliding window: at most `limit` cells at a time
        if len(running) >= limit:
            first = next(as_completed(running))
            done.append(first.result())
            running.remove(first)
        running.append(run_cell.submit(*cell, root=root))
    done += [f.result() for f in running]
    record_cells([f"ablation-{s}@{v}-{seed}" for s, v, seed in cells], root)
    run_stage("ablation", root)
    report = Path(root) / cfg.paths.ablation_dir / "results.md"
    create_markdown_artifact(
        key="ablation", markdown=report.read_text(), description="AVATAR vs GRPO ablation"
    )
    by_setting: dict[str, list[str]] = {}
    for name in done:
        by_setting.setdefault(name.split("/")[0], []).append(name)
    return by_setting


if __name__ == "__main__":
    ablation()
