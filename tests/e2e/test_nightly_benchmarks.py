"""The nightly flow over all eight benchmarks: a copy of the built repository with
`evaluate.benchmarks` pointing at the benchmark fixtures (one released layout each), two nightly
runs (`python -m flows.nightly_eval`, as the deployment's worker starts it), the second with one
benchmark folder gone: the history keeps every benchmark's official metrics and reports the
missing folder instead of failing."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from .conftest import VENV_BIN, BuiltRepo, set_param, sh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from benchmark_layouts import build_layout  # noqa: E402

pytestmark = pytest.mark.e2e

LAYOUT = {
    "omnibench": "github",
    "dailyomni": "creators",
    "avcounting": "creators",
    "worldsense": "creators",
    "mmvu": "creators",
    "videoholmes": "snapshot",
    "avodyssey": "lmms_eval",
    "intentbench": "creators",
}
HEADLINE = {"avcounting": "exact_acc | off_by_one_acc | mae | rmse", "intentbench": "mean_acc"}


def test_nightly_appends_every_benchmark_and_survives_a_missing_folder(
    built_repo: BuiltRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the flow runs on Prefect's ephemeral server, with its own home; a loaded machine needs more
    # than the default 20 s to start it
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "900")
    root = Path(shutil.copytree(built_repo.root, tmp_path / "repo", symlinks=True))
    benches = {
        name: build_layout(name, layout, tmp_path / "benchmarks" / name) for name, layout in LAYOUT.items()
    }
    set_param(root, "evaluate.benchmarks", [{"name": n, "root": str(p)} for n, p in benches.items()])
    set_param(root, "evaluate.control_checkpoints", ["s3"])  # blanked-media controls for the last stage only
    python = str(VENV_BIN / "python")

    start = time.perf_counter()
    sh([python, "-m", "flows.nightly_eval"], root)
    first_s = time.perf_counter() - start
    shutil.rmtree(benches["videoholmes"])
    sh([python, "-m", "flows.nightly_eval"], root)
    print(f"\nnightly run over 8 benchmarks: {first_s:.1f} s; history:\n")

    records = [json.loads(line) for line in (root / "results" / "history.jsonl").read_text().splitlines()]
    assert len(records) == 2
    first, second = records
    for name in LAYOUT:
        assert first["benchmarks"][name]["status"] == "evaluated"
        assert f"official.{name}.s3.n" in first["metrics"]
    assert second["benchmarks"]["videoholmes"]["status"] == "missing"
    assert not any(k.startswith("official.videoholmes.") for k in second["metrics"])
    md = (root / "results" / "history.md").read_text()
    print(md)
    for name in LAYOUT:
        assert f"## {name}: official metrics, stage s3" in md
        assert f"| time | {HEADLINE.get(name, 'acc')} | n | our_acc |" in md
    assert (
        "## Benchmarks not evaluated in the latest run\n\n- videoholmes: videoholmes: benchmark folder" in md
    )
    assert (root / "results" / "history.png").stat().st_size > 20000
    results = json.loads((root / "results" / "eval" / "results.json").read_text())
    assert results["stages"]["s3"]["avcounting"]["official"]["by_category"].keys() == {
        "attribute",
        "event",
        "object",
    }
