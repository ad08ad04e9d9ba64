"""scripts/rl_room.py: an RL stage from the SFT checkpoint, scored against it on the same clips."""

from __future__ import annotations

import importlib.util
import json

from recipe_helpers import REPO, run_script, tiny_config

from avatar_core.recipes.common import load_samples


def _script():
    spec = importlib.util.spec_from_file_location("rl_room", REPO / "scripts" / "rl_room.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(step: int, reward: float, accuracy: float, zero: float) -> str:
    return json.dumps(
        {"step": step, "reward_mean": reward, "accuracy": accuracy, "zero_adv_frac_before": zero}
    )


def test_quarters_split_the_steps_evenly_and_keep_the_remainder(tmp_path):
    log = tmp_path / "log.jsonl"
    rewards = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    log.write_text("\n".join(_record(i + 1, r, r / 2, 0.0 if i < 5 else 1.0) for i, r in enumerate(rewards)))
    parts = _script().quarters(log)
    # 10 steps: boundaries at 0, 2 (2.5 rounds to even), 5, 8 (7.5 rounds to even), 10
    assert [p["steps"] for p in parts] == ["1-2", "3-5", "6-8", "9-10"]
    assert [round(p["reward"], 6) for p in parts] == [0.15, 0.4, 0.7, 0.95]
    assert [round(p["accuracy"], 6) for p in parts] == [0.075, 0.2, 0.35, 0.475]
    assert [p["zero_variance_groups"] for p in parts] == [0.0, 0.0, 1.0, 1.0]


def test_the_script_trains_from_sft_and_pairs_both_checkpoints_on_the_eval_clips(project, tmp_path):
    cfg = tiny_config(project)
    data = cfg.paths.data_dir
    args = ["--name", "t", "--pool", data, "--eval", data, "--stage", "s1", "--no-progress"]
    run = run_script("rl_room.py", cfg, tmp_path, *args)
    assert run.returncode == 0, run.stderr[-2000:]
    out = project / "runs" / "rl_room" / "t"
    result = json.loads((out / "result.json").read_text())
    tasks = set(cfg.rl.s1.tasks)
    test = [s for s in load_samples(cfg, "test") if s.task in tasks]
    assert result["overall"]["n"] == len(test)
    assert {k for k in result if k in tasks} == {s.task for s in test}
    for family in ["overall", *tasks]:
        r = result[family]
        assert abs(r["mean"] - (r["s1"] - r["sft"])) < 1e-9
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
    assert [q["steps"] for q in result["training"]] == ["1-1", "2-2"]  # two steps, one per nonempty quarter
    assert (out / "rl" / "s1" / "done.json").is_file()  # the stage's own checkpoint, not the curriculum's
    assert (out / "metrics" / "s1" / "metrics.json").is_file()
    assert not (project / "checkpoints" / "rl" / "s1").exists()
    assert not (project / "results" / "metrics" / "s1").exists()  # the curriculum's metrics are untouched
