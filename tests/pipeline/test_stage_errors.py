"""A stage whose `avatar` command fails: DVC's output and the Prefect task's log show the same
`error: ...` lines the command printed (AVATAR_ERROR_FILE carries them through DVC)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from avatar_core.pipeline.dvc_repo import PipelineError
from tasks.stages import run_stage

REPO = Path(__file__).resolve().parents[2]


def test_failed_stage_reports_the_commands_error_lines(make_repo, caplog: pytest.LogCaptureFixture) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["seed"] = -1
    dvc_yaml = {
        "stages": {
            "bad": {"cmd": f"{sys.executable} -m avatar_core.cli hints --params params.yaml", "outs": ["out"]}
        }
    }
    root = make_repo({"dvc.yaml": yaml.safe_dump(dvc_yaml), "params.yaml": yaml.safe_dump(params)})
    expected = "error: seed: Input should be greater than or equal to 0 (got -1)"
    with caplog.at_level("ERROR"), pytest.raises(PipelineError) as failed:
        run_stage.fn("bad", str(root))
    assert failed.value.errors == (expected,)
    assert str(failed.value) == f"DVC stage 'bad' failed: {expected}"
    assert f"stage bad: {expected}" in caplog.text
    assert "AVATAR_ERROR_FILE" not in os.environ  # restored after the run
