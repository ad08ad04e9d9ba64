"""`avatar evaluate` on all eight benchmark fixtures with a tiny checkpoint: official metrics recorded,
a missing benchmark folder and an undecodable clip reported, not fatal; then the history entry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from avatar_core.config import AvatarConfig
from avatar_core.data.benchmarks import BENCHMARKS, load_benchmark
from avatar_core.data.schema import SYSTEM_PROMPT, format_question
from avatar_core.evaluation.official import official_metrics
from avatar_core.models.loading import build_tiny_policy, save_policy
from avatar_core.recipes.common import set_threads
from avatar_core.recipes.evaluate import run_evaluate
from avatar_core.recipes.history import history_paths, update_history

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from benchmark_layouts import build_layout  # noqa: E402

pytestmark = pytest.mark.slow  # 10-40 s with the machine's load: a tiny checkpoint on 7 benchmarks

LAYOUT = {  # one released layout per benchmark
    "omnibench": "github",
    "dailyomni": "creators",
    "avcounting": "creators",
    "worldsense": "creators",
    "mmvu": "creators",
    "videoholmes": "snapshot",
    "avodyssey": "lmms_eval",
    "intentbench": "creators",
}
HEADLINE = {
    "avcounting": ["exact_acc", "off_by_one_acc", "mae", "rmse", "n"],
    "intentbench": ["mean_acc", "n"],
}


def test_evaluate_records_official_metrics_and_reports_what_it_could_not_read(tmp_path: Path) -> None:
    roots = {name: build_layout(name, layout, tmp_path / "bench" / name) for name, layout in LAYOUT.items()}
    roots["dailyomni"] = tmp_path / "bench" / "not-downloaded"
    (roots["worldsense"] / "videos" / "vidB.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 then nothing")
    cfg = AvatarConfig.model_validate(
        {
            "paths": {"model_dir": str(tmp_path / "base"), "eval_dir": str(tmp_path / "results" / "eval")},
            "evaluate": {
                "splits": [],
                "checkpoints": ["base"],
                "benchmarks": [{"name": n, "root": str(r)} for n, r in roots.items()],
                "max_new_tokens": 8,
                "batch_size": 4,
                "bootstrap_samples": 20,
                "controls": [],  # the blanked-media controls are not what this test is about
            },
        }
    )
    corpus = [SYSTEM_PROMPT] + [
        format_question(s) for n, r in roots.items() if n != "dailyomni" for s in load_benchmark(n, r).samples
    ]
    save_policy(build_tiny_policy(cfg.model.tiny, corpus, seed=3), cfg.paths.model_dir)

    set_threads(1)
    results = run_evaluate(cfg, progress=False)

    report = results["benchmarks"]
    assert report["dailyomni"]["status"] == "missing"
    assert "not-downloaded does not exist" in report["dailyomni"]["reason"]
    assert (
        report["worldsense"]["read"],
        report["worldsense"]["undecodable"],
        report["worldsense"]["evaluated"],
    ) == (2, 1, 1)
    assert report["worldsense"]["undecodable_records"][0]["id"] == "worldsense/vidB_task1"
    assert report["videoholmes"]["layout"] == BENCHMARKS.get("videoholmes").layouts[1].description
    metrics = json.loads((Path(cfg.paths.eval_dir) / "metrics.json").read_text())
    evaluated = sorted(set(LAYOUT) - {"dailyomni"})
    assert sorted(metrics["official"]) == evaluated
    for name in evaluated:
        entry = results["stages"]["base"][name]
        headline = HEADLINE.get(name, ["acc", "n"])
        assert list(metrics["official"][name]["base"]) == headline
        # every fixture set has at most 3 questions, so the examples hold every output
        samples = [
            s
            for s in load_benchmark(name, roots[name]).samples
            if s.id in {e["id"] for e in entry["examples"]}
        ]
        assert len(samples) == entry["media"]["n"] == len(entry["examples"])
        expected = official_metrics(name, samples, [e["output"] for e in entry["examples"]])
        assert entry["official"] == expected
        assert metrics["base"][name] == round(entry["media"]["accuracy"], 4)
    results_md = (Path(cfg.paths.eval_dir) / "results.md").read_text()
    assert f"- dailyomni: not evaluated: {report['dailyomni']['reason']}" in results_md
    assert "### avcounting (official metrics)" in results_md and "By category (base):" in results_md

    records = update_history(cfg.paths.eval_dir)
    md = history_paths(cfg.paths.eval_dir)[1].read_text()
    for name in evaluated:
        assert f"## {name}: official metrics, stage base" in md
    assert records[-1]["benchmarks"]["dailyomni"]["status"] == "missing"
    assert "## Benchmarks not evaluated in the latest run\n\n- dailyomni: dailyomni: benchmark folder" in md


def test_a_benchmark_clip_is_decoded_once_for_the_whole_evaluation(tmp_path: Path, monkeypatch) -> None:
    """The undecodable check, the media run and every control share one loader per set: a benchmark
    that fits in the cache is decoded once, however many runs read it."""
    from avatar_core.recipes import evaluate as evaluate_recipe

    root = build_layout("worldsense", "creators", tmp_path / "bench" / "worldsense")
    cfg = AvatarConfig.model_validate(
        {
            "paths": {"model_dir": str(tmp_path / "base"), "eval_dir": str(tmp_path / "results" / "eval")},
            "evaluate": {
                "splits": [],
                "checkpoints": ["base"],
                "benchmarks": [{"name": "worldsense", "root": str(root)}],
                "max_new_tokens": 4,
                "batch_size": 4,
                "bootstrap_samples": 20,
                "controls": ["blank_media", "blank_video", "blank_audio"],
            },
        }
    )
    samples = load_benchmark("worldsense", root).samples
    corpus = [SYSTEM_PROMPT] + [format_question(s) for s in samples]
    save_policy(build_tiny_policy(cfg.model.tiny, corpus, seed=3), cfg.paths.model_dir)
    opened = []
    real_open = evaluate_recipe.open_clips

    def recording_open(*args, **kwargs):
        loader = real_open(*args, **kwargs)
        opened.append(loader)
        return loader

    monkeypatch.setattr(evaluate_recipe, "open_clips", recording_open)
    set_threads(1)
    results = run_evaluate(cfg, progress=False)

    entry = results["stages"]["base"]["worldsense"]
    assert all(entry[run]["n"] == len(samples) for run in ("media", *cfg.evaluate.controls))
    assert len(opened) == 1
    assert opened[0].stats.loads == len({s.video for s in samples})
