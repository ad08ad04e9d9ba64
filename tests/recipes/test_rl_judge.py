"""An RL stage rewarded by the shrunken InternVL3 judge: judge time and cache hit rate per step, and a
rerun that pays the judge nothing."""

from __future__ import annotations

import json
import shutil

from recipe_helpers import tiny_config

from avatar_core.models.internvl import build_tiny_internvl, save_internvl
from avatar_core.models.judge_factory import CACHE_FILE
from avatar_core.recipes.rl import run_rl


def test_rl_stage_with_the_internvl_judge_logs_judge_cost_and_reruns_from_the_cache(project):
    judge_dir = project / "judge"
    save_internvl(build_tiny_internvl(seed=0), judge_dir)
    cfg = tiny_config(project)
    stage = cfg.rl.s1
    stage.rewards = {"format": 0.5, "accuracy": 0.5, "judge": 0.2}
    options = stage.reward_options
    options.judge, options.judge_model = "model", str(judge_dir)
    options.judge_frames, options.judge_max_new_tokens = 2, 4

    run_rl(cfg, "s1", progress=False)
    run_dir = project / "runs" / "s1"
    first = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    lookups = stage.prompts_per_step * stage.group_size
    assert [r["judge_lookups"] for r in first] == [lookups] * stage.steps
    for record in first:
        assert record["judge_time_s"] > 0 and record["judge_scored"] >= 1
        assert record["judge_cache_hits"] + record["judge_scored"] == lookups
        assert record["judge_cache_hit_rate"] == record["judge_cache_hits"] / lookups
        assert 0.0 <= record["reward_judge"] <= 1.0
    cached = (run_dir / CACHE_FILE).read_text().splitlines()
    assert len(cached) == sum(r["judge_scored"] for r in first)

    # Rerun from scratch (checkpoint and state gone, cache kept): same seed, same completions, no judge call.
    shutil.rmtree(project / "checkpoints" / "rl" / "s1")
    shutil.rmtree(run_dir / "state")
    (run_dir / "log.jsonl").unlink()
    run_rl(cfg, "s1", progress=False)
    second = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["judge_cache_hit_rate"] for r in second] == [1.0] * stage.steps
    assert [r["judge_scored"] for r in second] == [0] * stage.steps
    assert [r["reward_judge"] for r in second] == [r["reward_judge"] for r in first]
    assert len((run_dir / CACHE_FILE).read_text().splitlines()) == len(cached)
