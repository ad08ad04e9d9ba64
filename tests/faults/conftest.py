"""A small project for the fault suite: synthetic data, the tiny base model and a 4-step SFT checkpoint,
built once per session; each test works on its own copy."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_helpers import fault_config, stage_snapshot


@pytest.fixture(scope="session")
def fault_project(tmp_path_factory) -> Path:
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.ingest import run_ingest
    from avatar_core.recipes.sft import run_sft

    set_threads(1)
    root = tmp_path_factory.mktemp("fault_project")
    cfg = fault_config(root)
    run_ingest(cfg, progress=False)
    run_sft(cfg, progress=False)
    return root


@pytest.fixture()
def project(fault_project: Path, tmp_path: Path) -> Path:
    """A private copy of the fault project."""
    dst = tmp_path / "project"
    shutil.copytree(fault_project, dst, symlinks=True)
    return dst


@dataclass(frozen=True)
class Reference:
    """An uninterrupted RL stage s1 on the fault project: its snapshot and its run state's size."""

    snapshot: dict
    state_bytes: int


@pytest.fixture(scope="session")
def rl_reference(fault_project: Path, tmp_path_factory) -> Reference:
    from avatar_core.recipes.rl import run_rl

    root = tmp_path_factory.mktemp("rl_reference") / "project"
    shutil.copytree(fault_project, root, symlinks=True)
    cfg = fault_config(root)
    run_rl(cfg, "s1", progress=False)
    state = Path(cfg.paths.runs_dir) / "s1" / "state"
    size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
    return Reference(stage_snapshot(cfg, "s1"), size)
