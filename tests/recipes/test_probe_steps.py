"""The step probe on real checkpoints: the SFT checkpoint of the tiny project reproduces the steps of
the traces it was trained on, the untrained base model does not, and every step is counted once."""

from __future__ import annotations

import json

from recipe_helpers import run_script, tiny_config

from avatar_core.evaluation.trace_steps import step_spans, teacher_forced_steps
from avatar_core.recipes.common import load_samples, open_clips
from avatar_core.recipes.policy import load_stage_policy


def _steps(cfg, stage, samples):
    with open_clips(cfg) as clips:
        return teacher_forced_steps(load_stage_policy(cfg, stage), samples, clips, batch_size=4)


def test_sft_learns_the_steps_of_its_training_traces_and_base_does_not(project):
    cfg = tiny_config(project)
    train = load_samples(cfg, "train")
    sft, base = _steps(cfg, "sft", train), _steps(cfg, "base", train)
    expected = {}
    for s in train:
        for name, _, _ in step_spans(s.reasoning):
            expected[name] = expected.get(name, 0) + 1
    assert {k: n for k, (_, n) in sft.items()} == expected == {k: n for k, (_, n) in base.items()}
    assert {"beeps", "colour_flashes", "answer"} <= set(expected)
    right = lambda counts: sum(r for r, _ in counts.values()) / sum(n for _, n in counts.values())  # noqa: E731
    assert right(sft) > 0.6  # measured 0.81
    assert right(base) < 0.2  # measured 0.0


def test_the_script_writes_every_family_and_control(project, tmp_path):
    cfg = tiny_config(project)
    out = tmp_path / "steps.json"
    args = ["--stage", "sft", "--controls", "media,blank_audio", "--out", str(out)]
    run = run_script("probe_steps.py", cfg, tmp_path, *args)
    assert run.returncode == 0, run.stderr[-2000:]
    steps = json.loads(out.read_text())["steps"]
    families = {s.task for s in load_samples(cfg, "test")}
    assert set(steps) == families
    assert all(set(v) == {"media", "blank_audio"} for v in steps.values())
    assert all(r <= n for v in steps.values() for c in v.values() for r, n in c.values())
