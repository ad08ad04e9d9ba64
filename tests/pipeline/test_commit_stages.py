"""commit_stages: outputs made outside DVC (the ablation flow's concurrent cells) are recorded in
dvc.lock, after which DVC finds the stages up to date and reruns them only when a param changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from avatar_core.pipeline.dvc_repo import PipelineError, commit_stages, reproduce_stage, stage_status


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(
        ["dvc", "init", "-q"], cwd=tmp_path, check=True, env={"DVC_NO_ANALYTICS": "1", "PATH": _path()}
    )
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"cells": {"a": {"x": 1}, "b": {"x": 2}}, "seeds": [1, 2]})
    )
    stage = {
        "matrix": {"cell": "${cells}", "seed": "${seeds}"},
        "cmd": "echo ${item.cell}${item.seed} > out-${item.cell}-${item.seed}.txt",
        "params": ["cells.${item.cell}"],
        "outs": ["out-${item.cell}-${item.seed}.txt"],
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"cell": stage}}))
    return tmp_path


def _path() -> str:
    import os
    import sys

    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def test_outputs_made_outside_dvc_are_committed_and_then_up_to_date(repo: Path):
    names = [f"cell@{c}-{s}" for c in ("a", "b") for s in (1, 2)]
    for name in names:  # what the concurrent cells would have written
        cell, seed = name.split("@")[1].split("-")
        (repo / f"out-{cell}-{seed}.txt").write_text(f"{cell}{seed}\n")
    assert stage_status(repo, "cell@a-1")  # not recorded yet
    commit_stages(repo, names)
    for name in names:
        assert stage_status(repo, name) == {}
        assert reproduce_stage(repo, name).up_to_date
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(names)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["cells"]["b"]["x"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert stage_status(repo, "cell@b-1") and stage_status(repo, "cell@a-1") == {}


def test_unknown_stage_names_are_refused(repo: Path):
    with pytest.raises(PipelineError, match="unknown DVC stage 'cell@c-1'"):
        commit_stages(repo, ["cell@c-1"])
