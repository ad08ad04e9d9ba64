"""run_stage / record_run / push_outputs on throwaway git + DVC repositories (tasks called via .fn)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from avatar_core.pipeline.dvc_repo import PipelineError, find_root, stage_names, stage_status
from tasks.remote import push_outputs, record_run
from tasks.stages import run_stage

PY = sys.executable
TOY_DVC = f"""
stages:
  make:
    cmd: {PY} make.py
    deps:
      - make.py
      - src.txt
    outs:
      - out
  report:
    cmd: {PY} report.py
    deps:
      - out
    metrics:
      - metrics.json:
          cache: false
"""
MAKE = "import pathlib\npathlib.Path('out').mkdir(exist_ok=True)\npathlib.Path('out/a.txt').write_text(open('src.txt').read())\n"
REPORT = "import json\nopen('metrics.json', 'w').write(json.dumps({'size': len(open('out/a.txt').read())}))\n"


def _params(**remote: str) -> str:
    return yaml.safe_dump({"remote": remote}) if remote else "{}\n"


@pytest.fixture
def toy(make_repo) -> Path:
    return make_repo(
        {
            "dvc.yaml": TOY_DVC,
            "make.py": MAKE,
            "report.py": REPORT,
            "src.txt": "hello",
            "params.yaml": _params(),
        }
    )


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def test_run_stage_runs_then_reports_up_to_date(toy: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert run_stage.fn("make", str(toy)) is True
    assert (toy / "out" / "a.txt").read_text() == "hello"
    assert stage_status(toy, "make") == {}
    with caplog.at_level("INFO"):
        assert run_stage.fn("make", str(toy)) is False
    assert "up to date" in caplog.text
    # single item: `report` was not run by running `make`
    assert not (toy / "metrics.json").exists()
    assert run_stage.fn("report", str(toy)) is True
    assert json.loads((toy / "metrics.json").read_text()) == {"size": 5}


def test_force_reruns_an_up_to_date_stage(toy: Path) -> None:
    run_stage.fn("make", str(toy))
    assert run_stage.fn("make", str(toy), force=True) is True


def test_changed_dependency_reruns(toy: Path) -> None:
    run_stage.fn("make", str(toy))
    (toy / "src.txt").write_text("changed")
    assert "make" in stage_status(toy, "make")
    assert run_stage.fn("make", str(toy)) is True
    assert (toy / "out" / "a.txt").read_text() == "changed"


def test_unknown_stage_lists_valid_names(toy: Path) -> None:
    with pytest.raises(PipelineError, match=r"unknown DVC stage 'trian'.*make, report"):
        run_stage.fn("trian", str(toy))


def test_failing_stage_names_the_stage(make_repo) -> None:
    root = make_repo(
        {
            "dvc.yaml": f"stages:\n  boom:\n    cmd: {PY} boom.py\n",
            "boom.py": "raise SystemExit(3)\n",
            "params.yaml": "{}\n",
        }
    )
    with pytest.raises(PipelineError, match="DVC stage 'boom' failed"):
        run_stage.fn("boom", str(root))


def test_stage_order_and_root_errors(toy: Path, tmp_path: Path) -> None:
    assert stage_names(toy) == ["make", "report"]
    (toy / "sub").mkdir()
    assert find_root(toy / "sub") == toy
    with pytest.raises(PipelineError, match="no DVC repository"):
        find_root(tmp_path / "elsewhere")


def test_record_run_gives_the_commit_command(toy: Path) -> None:
    run_stage.fn("make", str(toy))
    run_stage.fn("report", str(toy))
    advice = record_run.fn(str(toy))
    assert advice.startswith("git add dvc.lock metrics.json && git commit")
    assert _git(toy, "status", "--porcelain", "dvc.lock").startswith("??")  # nothing was committed


def test_record_run_commits_on_a_branch_without_touching_the_checkout(toy: Path) -> None:
    (toy / "params.yaml").write_text(_params(commit_branch="results"))
    _git(toy, "commit", "-qam", "commit branch configured")
    head = _git(toy, "rev-parse", "HEAD")
    run_stage.fn("make", str(toy))
    run_stage.fn("report", str(toy))
    commit = record_run.fn(str(toy))
    assert _git(toy, "rev-parse", "refs/heads/results") == commit
    assert _git(toy, "rev-parse", "HEAD") == head  # main untouched
    assert _git(toy, "symbolic-ref", "--short", "HEAD") == "main"
    assert sorted(_git(toy, "diff", "--name-only", head, commit).split()) == ["dvc.lock", "metrics.json"]
    assert json.loads(_git(toy, "show", f"{commit}:metrics.json")) == {"size": 5}
    assert record_run.fn(str(toy)) == ""  # same content already on the branch: no empty commit


def test_record_run_on_the_checked_out_branch(toy: Path) -> None:
    (toy / "params.yaml").write_text(_params(commit_branch="main"))
    _git(toy, "commit", "-qam", "commit branch configured")
    run_stage.fn("make", str(toy))
    commit = record_run.fn(str(toy))
    assert _git(toy, "rev-parse", "HEAD") == commit
    assert _git(toy, "status", "--porcelain", "dvc.lock") == ""


def test_push_outputs_to_the_default_local_remote(toy: Path) -> None:
    subprocess.run(
        [str(Path(PY).with_name("dvc")), "remote", "add", "-d", "local", str(toy / "store")],
        cwd=toy,
        check=True,
        capture_output=True,
    )
    run_stage.fn("make", str(toy))
    assert push_outputs.fn(str(toy)) == 2  # the folder's manifest and a.txt
    stored = [p for p in (toy / "store").rglob("*") if p.is_file()]
    assert any(p.read_bytes() == b"hello" for p in stored)
    assert push_outputs.fn(str(toy)) == 0  # nothing new


def test_push_without_any_remote_is_a_clear_error(toy: Path) -> None:
    run_stage.fn("make", str(toy))
    with pytest.raises(PipelineError, match="names no default remote"):
        push_outputs.fn(str(toy))
