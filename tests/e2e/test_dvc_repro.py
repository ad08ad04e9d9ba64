"""`dvc repro` on the reduced config: a second run of the curriculum reruns nothing, a changed `rl.s3`
parameter reruns rl@s3 and evaluate only; `dvc repro ablation` runs every cell and the summary, and
a changed variant reruns that variant's cells and the summary only."""

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
    assert set(metrics) == {"sft", "s1", "s2", "s3"}  # evaluate.checkpoints

    start = time.perf_counter()
    noop = sh([dvc, "repro", "evaluate"], root).stdout
    noop_s = time.perf_counter() - start
    assert ran_stages(noop) == [] and "Data and pipelines are up to date" in noop
    assert (root / "dvc.lock").read_text() == lock
    print(f"\nfull dvc repro: {built_repo.first_repro_s:.1f} s; no-op dvc repro: {noop_s:.2f} s")
    assert noop_s < 30

    set_param(root, "rl.s3.steps", 3)
    changed = sh([dvc, "repro", "evaluate"], root).stdout
    assert ran_stages(changed) == ["rl@s3", "evaluate"]
    assert ran_stages(sh([dvc, "repro", "evaluate"], root).stdout) == []


def test_repro_ablation_then_one_variant_changed(built_repo: BuiltRepo) -> None:
    root, dvc = built_repo.root, str(VENV_BIN / "dvc")
    cells = ["ablation-binary@grpo-1", "ablation-binary@avatar-1", "ablation-dense@grpo-1"]
    start = time.perf_counter()
    ran = ran_stages(sh([dvc, "repro", "ablation"], root).stdout)
    print(f"\nreduced ablation (3 cells + summary): {time.perf_counter() - start:.1f} s")
    assert sorted(ran) == sorted([*cells, "ablation"])
    results = json.loads((root / "results" / "ablation" / "results.json").read_text())
    assert set(results["settings"]["binary"]["variants"]) == {"grpo", "avatar"}
    assert (root / "results" / "ablation" / "curves.png").is_file()
    assert ran_stages(sh([dvc, "repro", "ablation"], root).stdout) == []

    set_param(root, "ablation.variants.avatar", {"tas.lam": 0.5})
    ran = ran_stages(sh([dvc, "repro", "ablation"], root).stdout)
    assert sorted(ran) == ["ablation", "ablation-binary@avatar-1"]
    config = json.loads((root / "results/ablation/cells/binary/avatar/seed-1/config.json").read_text())
    assert config["rl_stage_config"]["tas"]["lam"] == 0.5
