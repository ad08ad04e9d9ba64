"""A tiny project on disk for recipe tests: synthetic data, the tiny base model and an SFT checkpoint.

Built once per test session in a temporary folder; each test gets a config whose paths point there
and copies what it writes into its own folders, so tests do not see each other's outputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from recipe_helpers import tiny_config


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A folder holding data/, checkpoints/base and checkpoints/sft for the tiny config."""
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.ingest import run_ingest
    from avatar_core.recipes.sft import run_sft

    set_threads(1)
    root = tmp_path_factory.mktemp("tiny_project")
    cfg = tiny_config(root)
    run_ingest(cfg, progress=False)
    run_sft(cfg, progress=False)
    return root


@pytest.fixture()
def project(tiny_project: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny project for one test."""
    dst = tmp_path / "project"
    shutil.copytree(tiny_project, dst, symlinks=True)
    return dst
