"""The ablation study in a smoke configuration: 2 variants x 2 seeds x 2 steps from the tiny SFT
checkpoint. Checks the cells' files, that finished cells are not rerun, and that every number of
the summary is computed from the per-seed values the cells wrote. No test asserts which variant wins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from recipe_helpers import tiny_config

from avatar_core.config import AblationSetting, ConfigError, config_from_dict
from avatar_core.evaluation.study_stats import mean_with_ci, paired_difference
from avatar_core.recipes.ablation import cell_stage_config, run_ablate
from avatar_core.recipes.checkpoint import directory_digest

pytestmark = pytest.mark.slow


def _smoke(project: Path):
    cfg = tiny_config(project)
    ab = cfg.ablation
    ab.seeds = [1, 2]
    ab.steps = 2
    ab.eval_every = 8  # 2 prompts x 4 completions per step: an evaluation after every step
    ab.eval_max_new_tokens = 12
    ab.settings = {
        "binary": AblationSetting(variants=["grpo", "avatar"], changes=ab.settings["binary"].changes)
    }
    return cfg


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_cell_configs_apply_the_setting_then_the_variant(project):
    cfg = _smoke(project)
    grpo = cell_stage_config(cfg, "binary", "grpo")
    assert grpo.objective.name == "grpo" and not grpo.tas.enabled and not grpo.buffer.enabled
    assert not grpo.hints.enabled
    assert grpo.rewards == {"accuracy": 1.0} and grpo.reward_options.numeric_mode == "binary"
    avatar = cell_stage_config(cfg, "binary", "avatar")
    assert avatar.objective.name == "avatar" and avatar.tas.enabled and avatar.buffer.enabled
    assert avatar.rewards == {"accuracy": 1.0} and avatar.steps == 2
    assert avatar.group_size == cfg.rl.s1.group_size  # everything else is the stage's
    with pytest.raises(ValueError, match="unknown ablation variant 'ppo'"):
        cell_stage_config(cfg, "binary", "ppo")


def test_smoke_study_cells_and_summary(project):
    cfg = _smoke(project)
    root = Path(cfg.paths.ablation_dir)
    for variant in ("grpo", "avatar"):
        for seed in (1, 2):
            done = run_ablate(cfg, "binary", variant, seed, progress=False)
            cell = root / "cells" / "binary" / variant / f"seed-{seed}"
            curve = _jsonl(cell / "curve.jsonl")
            assert [r["completions"] for r in curve] == [0, 8, 16] and [r["step"] for r in curve] == [0, 1, 2]
            assert done["final_accuracy"] == curve[-1]["accuracy"]
            assert json.loads((cell / "config.json").read_text())["rl_stage_config"]["objective"]["name"] == (
                "grpo" if variant == "grpo" else "avatar"
            )
            assert len(_jsonl(cell / "log.jsonl")) == 2
    # a finished cell is found, not rerun
    before = (root / "cells/binary/avatar/seed-1/curve.jsonl").stat().st_mtime_ns
    run_ablate(cfg, "binary", "avatar", 1, progress=False)
    assert (root / "cells/binary/avatar/seed-1/curve.jsonl").stat().st_mtime_ns == before
    # ... unless what it depends on changed: how it is scored, or its start checkpoint's content
    config = json.loads((root / "cells/binary/avatar/seed-1/config.json").read_text())
    assert config["start_identity"]["weights"] == directory_digest(Path(cfg.paths.sft_dir) / "model")
    cfg.ablation.eval_max_new_tokens = 10
    run_ablate(cfg, "binary", "avatar", 1, progress=False)
    assert (root / "cells/binary/avatar/seed-1/curve.jsonl").stat().st_mtime_ns != before
    config = json.loads((root / "cells/binary/avatar/seed-1/config.json").read_text())
    assert config["evaluation"]["eval_max_new_tokens"] == 10

    results = run_ablate(cfg, summary=True)
    res = results["settings"]["binary"]
    assert res["budgets"] == [0, 8, 16] and res["missing_cells"] == []
    per_seed = {
        v: np.array(
            [[r["accuracy"] for r in _jsonl(root / f"cells/binary/{v}/seed-{s}/curve.jsonl")] for s in (1, 2)]
        )
        for v in ("grpo", "avatar")
    }
    boot = {"n_boot": cfg.ablation.bootstrap_samples, "confidence": cfg.ablation.confidence}
    for v, curves in per_seed.items():
        assert res["variants"][v]["curve"] == mean_with_ci(curves, **boot)
        assert res["variants"][v]["final"]["per_seed"] == curves[:, -1].tolist()
        assert res["variants"][v]["final"]["mean"] == pytest.approx(curves[:, -1].mean())
    assert res["target"] == pytest.approx(per_seed["grpo"][:, -1].mean())
    assert res["variants"]["avatar"]["vs_baseline"] == paired_difference(
        per_seed["avatar"][:, -1], per_seed["grpo"][:, -1], **boot
    )
    # the baseline reaches its own final mean at the latest at the last budget
    assert res["variants"]["grpo"]["to_target"]["value"] is not None
    steps = res["variants"]["avatar"]["steps"]
    logged = [
        r["zero_adv_frac_before"]
        for s in (1, 2)
        for r in _jsonl(root / f"cells/binary/avatar/seed-{s}/log.jsonl")
    ]
    assert steps["collapse_before"] == pytest.approx(np.mean([np.mean(logged[:2]), np.mean(logged[2:])]))
    report = (root / "results.md").read_text()
    assert "| variant | final accuracy [95% CI] | completions to target [95% CI]" in report
    assert "| grpo |" in report and "| avatar |" in report
    assert (root / "curves.png").is_file() and (root / "collapse.png").is_file()
    rows = (root / "curves.csv").read_text().splitlines()
    assert rows[0] == "setting,variant,completions,accuracy,ci_low,ci_high" and len(rows) == 1 + 2 * 3
    assert set(json.loads((root / "metrics.json").read_text())["binary"]) == {"grpo", "avatar"}


def test_summary_reports_missing_cells_and_makes_up_nothing(project):
    cfg = _smoke(project)
    results = run_ablate(cfg, summary=True)
    res = results["settings"]["binary"]
    assert res["variants"] == {} and len(res["missing_cells"]) == 4


def test_bad_variant_settings_fail_at_load_time(project):
    with pytest.raises(
        ConfigError, match=r"ablation.variants.grpo: in setting 'default'.*objective.name: unknown"
    ):
        config_from_dict({"ablation": {"variants": {"grpo": {"objective.name": "ppo"}, "avatar": {}}}})
    with pytest.raises(ConfigError, match=r"setting 'x' runs variants \['nope'\]"):
        config_from_dict({"ablation": {"settings": {"x": {"variants": ["nope"]}}}})
    # a cell's rl_dir is its own folder, where an RL start checkpoint would be looked for in vain
    with pytest.raises(
        ConfigError, match=r"ablation.start: 's1' is not supported; .* starts from base or sft"
    ):
        config_from_dict({"ablation": {"start": "s1", "stage": "s2"}})


def test_a_cell_digests_its_start_checkpoint_once(project, monkeypatch):
    """A real model's start checkpoint is gigabytes: the cell's identity and the RL stage's
    fingerprint share one digest of it."""
    from avatar_core.recipes import checkpoint

    cfg = _smoke(project)
    start = Path(cfg.paths.sft_dir) / "model"
    digested: list[Path] = []
    real = checkpoint.directory_digest

    def counting(folder, *args, **kwargs):
        digested.append(Path(folder))
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "directory_digest", counting)
    run_ablate(cfg, "binary", "avatar", 1, progress=False)
    assert digested.count(start) == 1, digested
