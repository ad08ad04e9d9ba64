"""Flow `avatar`: the whole curriculum as DVC stages, in order (deployment `full-curriculum`), or
the ablation study (deployment `ablation`, `target="ablation"`: the subflow in flows/ablation.py).

ingest -> hints -> sft -> rl@s1 -> rl@s2 -> rl@s3 -> evaluate, each a `run_stage` task, so stages
DVC finds up to date are skipped exactly as `dvc repro` would skip them. Then the metric tables
and the evaluation report are published as Prefect artifacts, outputs are pushed to the DVC remote
when `remote.push_after_run` is set, and dvc.lock is committed on `remote.commit_branch` (or the
command to commit it is logged). The flow only orders tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow

from avatar_core.config import load_config
from flows.ablation import ablation
from tasks.artifacts import publish_artifacts
from tasks.remote import push_outputs, record_run
from tasks.stages import CURRICULUM, run_stage


@flow(name="avatar", log_prints=True)
def avatar(
    root: str = ".", force: bool = False, target: Literal["curriculum", "ablation"] = "curriculum"
) -> dict:
    """Run the curriculum in the repository at `root` (returns stage -> whether it ran), or with
    target="ablation" the AVATAR vs GRPO study (returns setting -> cells run)."""
    root = str(Path(root).resolve())
    if target == "ablation":
        return ablation(root)
    cfg = load_config(Path(root) / "params.yaml")
    ran = {name: run_stage(name, root, force=force) for name in CURRICULUM}
    publish_artifacts(root)
    if cfg.remote.push_after_run:
        push_outputs(root)
    record_run(root, message="full curriculum")
    return ran


if __name__ == "__main__":
    avatar()
