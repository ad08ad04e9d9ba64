"""SIGKILL at every named fault point of a stage's writes, then a rerun: the result must be the
uninterrupted run's, file for file.

Each case forks a child that runs the stage with `AVATAR_FAULTS=<point>#<n>=kill` (deterministic:
the n-th arrival at the point, never a timer), checks what the kill left (no stage marked done,
the checkpoint a rerun will start from), reruns the stage in this process and compares run state,
output folder, metrics files and step log with a run that was never interrupted. RL: 4 steps, a
checkpoint after steps 2 and 4, so commits #1, #2 are the run state and #3 the stage output.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from fault_helpers import RL_STEPS, SFT_STEPS, fault_config, killed_run, leftovers, stage_snapshot

from avatar_core.recipes.rl import run_rl
from avatar_core.recipes.sft import run_sft

pytestmark = pytest.mark.slow

# (point#arrival, what the kill interrupts, the step a rerun resumes from; 0: from the start)
RL_KILL_POINTS = [
    ("rl.step_done#3", "step 3 applied and logged, its checkpoint not written", 2),
    ("checkpoint.model_saved#2", "step-4 checkpoint: weights written, trainer state not", 2),
    ("checkpoint.trainer_saved#2", "step-4 checkpoint: weights and trainer state, buffer not", 2),
    ("checkpoint.files_saved#2", "step-4 checkpoint: all files in state.tmp, not renamed", 2),
    ("commit.between_renames#2", "step-2 state moved to state.old, step-4 state not in place", 2),
    ("output.model_saved#1", "final model in the .tmp output folder, no done.json", RL_STEPS),
    ("output.metrics_published#1", "metrics published, output folder not renamed into place", RL_STEPS),
    ("commit.between_renames#3", "the output folder's rename into place", RL_STEPS),
]
SFT_KILL_POINTS = [
    ("sft.step_done#3", "step 3 applied and logged, no checkpoint since step 2", 2),
    ("checkpoint.model_saved#1", "step-2 checkpoint: weights written, trainer state not", 0),
    ("commit.between_renames#1", "step-2 checkpoint complete in state.tmp, not renamed", 0),
    ("output.model_saved#1", "final model in the .tmp output folder, no done.json", 2),
    ("output.metrics_published#1", "metrics published, output folder not renamed into place", 2),
]


def _resumed_from(caplog, stage: str) -> int:
    prefix = "resuming sft from step " if stage == "sft" else f"resuming stage {stage} from step "
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith(prefix):
            return int(message.removeprefix(prefix).split()[0])
    return 0


@pytest.mark.parametrize(("point", "what", "resume_step"), RL_KILL_POINTS, ids=[p[0] for p in RL_KILL_POINTS])
def test_rl_killed_at_point_then_rerun_equals_uninterrupted(
    project: Path, rl_reference, caplog, point: str, what: str, resume_step: int
) -> None:
    cfg = fault_config(project)
    assert killed_run(lambda: run_rl(cfg, "s1", progress=False), f"{point}=kill") == -9, what
    out = Path(cfg.paths.rl_dir) / "s1"
    assert not (out / "done.json").is_file(), "a killed stage must not look finished"

    with caplog.at_level(logging.INFO):
        result = run_rl(cfg, "s1", progress=False)
    assert _resumed_from(caplog, "s1") == resume_step, what
    assert result["steps"] == RL_STEPS
    assert stage_snapshot(cfg, "s1") == rl_reference.snapshot
    assert leftovers(cfg) == []

    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_rl(cfg, "s1", progress=False)
    assert any("is up to date" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("point", "what", "resume_step"), SFT_KILL_POINTS, ids=[p[0] for p in SFT_KILL_POINTS]
)
def test_sft_killed_at_point_then_rerun_equals_uninterrupted(
    fault_project: Path, project: Path, caplog, point: str, what: str, resume_step: int
) -> None:
    reference = stage_snapshot(fault_config(fault_project), "sft")  # the fixture's uninterrupted SFT
    cfg = fault_config(project)
    for folder in (cfg.paths.sft_dir, Path(cfg.paths.runs_dir) / "sft", Path(cfg.paths.metrics_dir) / "sft"):
        shutil.rmtree(folder)
    assert killed_run(lambda: run_sft(cfg, progress=False), f"{point}=kill") == -9, what
    assert not (Path(cfg.paths.sft_dir) / "done.json").is_file()

    with caplog.at_level(logging.INFO):
        result = run_sft(cfg, progress=False)
    assert _resumed_from(caplog, "sft") == resume_step, what
    assert result["steps"] == SFT_STEPS
    snapshot = stage_snapshot(cfg, "sft")
    assert snapshot == reference
    assert leftovers(cfg) == []


# SFT with a 4-step warm-up phase (sft.warmup) before its 4 main steps, a checkpoint every 2 steps:
# a kill inside the warm-up, right after its last checkpoint, and inside the main phase.
WARMUP_KILL_POINTS = [
    ("sft.step_done#3", "warm-up step 3 applied, last checkpoint at warm-up step 2", 2),
    ("sft.step_done#5", "main step 1 applied, last checkpoint the warm-up's end", 4),
    ("sft.step_done#7", "main step 3 applied, last checkpoint at main step 2", 6),
]
WARMUP = {"data.synthetic.train_only_tasks": ["locate"], "data.synthetic.n_train": 10,
          "sft.warmup": {"tasks": ["locate"], "steps": 4}}  # fmt: skip


@pytest.fixture(scope="module")
def warmup_reference(tmp_path_factory) -> tuple[Path, dict]:
    """A data set with the `locate` family and an uninterrupted SFT with a warm-up on it."""
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.ingest import run_ingest

    set_threads(1)  # one torch thread: a forked child of a multi-threaded pool can deadlock
    root = tmp_path_factory.mktemp("warmup_project")
    cfg = fault_config(root, **WARMUP)
    run_ingest(cfg, progress=False)
    clean = tmp_path_factory.mktemp("warmup_clean") / "project"
    shutil.copytree(root, clean, symlinks=True)
    run_sft(fault_config(clean, **WARMUP), progress=False)
    return root, stage_snapshot(fault_config(clean, **WARMUP), "sft")


@pytest.mark.parametrize(
    ("point", "what", "resume_step"), WARMUP_KILL_POINTS, ids=[p[0] for p in WARMUP_KILL_POINTS]
)
def test_sft_with_warmup_killed_then_rerun_equals_uninterrupted(
    warmup_reference, tmp_path: Path, caplog, point: str, what: str, resume_step: int
) -> None:
    source, reference = warmup_reference
    shutil.copytree(source, tmp_path / "project", symlinks=True)
    cfg = fault_config(tmp_path / "project", **WARMUP)
    assert killed_run(lambda: run_sft(cfg, progress=False), f"{point}=kill") == -9, what
    with caplog.at_level(logging.INFO):
        result = run_sft(cfg, progress=False)
    assert _resumed_from(caplog, "sft") == resume_step, what
    assert result["steps"] == 4 + SFT_STEPS and result["warmup_steps"] == 4
    assert stage_snapshot(cfg, "sft") == reference
    assert leftovers(cfg) == []
