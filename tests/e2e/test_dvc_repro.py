"""`dvc repro` of the whole curriculum on the reduced config: a second run reruns nothing, and a
changed `rl.s3` parameter reruns rl@s3 and evaluate only."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import VENV_BIN, BuiltRepo, ran_stages, set_param, sh

pytestmark = pytest.mark.e2e


def test_repro_noop_then_rl_s3_change(built_repo: BuiltRepo) -> None:
    root, dvc = built_repo.root, str(VENV_BIN / "dvc")
    lock = (root / "dvc.lock").read_text()
    for stage in ("ingest", "hints", "sft", "rl@s1", "rl@s2", "rl@s3", "evaluate"):
        assert f"  {stage}:" in lock
    metrics = json.loads((root / "results" / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"base", "sft", "s1", "s2", "s3"}

    start = time.perf_counter()
    noop = sh([dvc, "repro"], root).stdout
    noop_s = time.perf_counter() - start
    assert ran_stages(noop) == [] and "Data and pipelines are up to date" in noop
    assert (root / "dvc.lock").read_text() == lock
    print(f"\nfull dvc repro: {built_repo.first_repro_s:.1f} s; no-op dvc repro: {noop_s:.2f} s")
    assert noop_s < 30

    set_param(root, "rl.s3.steps", 3)
    changed = sh([dvc, "repro"], root).stdout
    assert ran_stages(changed) == ["rl@s3", "evaluate"]
    assert ran_stages(sh([dvc, "repro"], root).stdout) == []
