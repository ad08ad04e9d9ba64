"""`avatar evaluate`: greedy answers of every stage's checkpoint, accuracy with bootstrap intervals.

For each checkpoint in `evaluate.checkpoints` (base, sft, s1, s2, s3; missing ones are reported and
skipped) and each evaluation set (the held-out synthetic/ingested splits and every configured
benchmark adapter), the model answers greedily and is scored by `avatar_core.evaluation.scoring`.
Accuracy is reported overall and per task family with 95% bootstrap intervals, beside the chance
level and the configured controls (`evaluate.controls`): the same evaluation with black frames
and silence, with black frames only, and with silence only. A family that needs to see must fall
to its blank level without video, one that needs to hear without audio. Each benchmark is also
scored the way it defines itself (avatar_core.evaluation.official: CG-AV-Counting exact /
off-by-one / MAE / RMSE, IntentBench's creators' scores, accuracy per category for the others).
A configured benchmark whose folder or annotation file is missing is reported and left out, not
fatal; so are records whose media do not decode. Each set has one clip loader for the whole
evaluation, so a benchmark whose clips fit in `data.loader.cache_mb` is decoded once for the
undecodable check, every checkpoint and every control. When an RL stage rewards with a model judge, the
judge itself is checked too (`avatar_core.evaluation.judge_check`: matching reasoning scored with
the frames vs blank frames). Writes results.json (with a `benchmarks` report: layout detected,
records read / rejected / skipped / undecodable, or why a benchmark was not evaluated),
metrics.json (DVC metrics, with `official: {benchmark: {stage: metrics}}`), results.md and
accuracy_by_stage.png to `paths.eval_dir`, and every evaluation set as `lm_eval/<set>.jsonl` there
for the lm-eval tasks of `avatar_core.evaluation.lm_eval_tasks`.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from avatar_core.config import AvatarConfig
from avatar_core.data.loader import ClipLoader, control_clips
from avatar_core.data.media import MediaError, resolve_media_path
from avatar_core.data.schema import Sample, format_question
from avatar_core.evaluation.judge_check import judge_check_for
from avatar_core.evaluation.judge_check import markdown_report as judge_markdown
from avatar_core.evaluation.official import official_metrics
from avatar_core.evaluation.report import benchmark_markdown, flat_metrics, markdown_table, plot_accuracy
from avatar_core.evaluation.scoring import greedy_answers, score_answers, summarise
from avatar_core.evaluation.stats import chance_level
from avatar_core.models.kinds import fit_samples
from avatar_core.recipes.common import (
    load_samples,
    media_root,
    open_clips,
    stage_model_dir,
    write_json,
)
from avatar_core.recipes.policy import load_stage_policy

log = logging.getLogger(__name__)

__all__ = [
    "evaluation_sets",
    "export_lm_eval_jsonl",
    "greedy_answers",
    "load_benchmarks",
    "run_evaluate",
    "score_answers",
]


def evaluation_sets(cfg: AvatarConfig) -> dict[str, tuple[list[Sample], Path | None]]:
    """The held-out splits and every configured benchmark that loads (see `load_benchmarks`)."""
    sets: dict[str, tuple[list[Sample], Path | None]] = {}
    for split in cfg.evaluate.splits:
        sets[split] = (load_samples(cfg, split), None)
    benchmark_sets, _ = load_benchmarks(cfg)
    return {**sets, **benchmark_sets}


def load_benchmarks(cfg: AvatarConfig) -> tuple[dict[str, tuple[list[Sample], Path]], dict[str, dict]]:
    """The samples of each configured benchmark, and a report per benchmark.

    A missing folder or annotation file (BenchmarkError) is reported with status "missing" and
    the benchmark left out; one with no usable record gets status "empty". An unknown adapter
    name is a configuration error and raises.
    """
    from avatar_core.data.benchmarks import BenchmarkError, load_benchmark

    sets: dict[str, tuple[list[Sample], Path]] = {}
    report: dict[str, dict] = {}
    for spec in cfg.evaluate.benchmarks:
        try:
            loaded = load_benchmark(spec.name, spec.root, limit=spec.limit)
        except BenchmarkError as err:
            log.warning("benchmark %s not evaluated: %s", spec.name, err)
            report[spec.name] = {"status": "missing", "root": spec.root, "reason": str(err)}
            continue
        log.info("benchmark %s: layout: %s", spec.name, loaded.layout)
        for r in loaded.rejected:
            log.warning("benchmark %s: rejected record %s", spec.name, r)
        report[spec.name] = {
            "status": "evaluated" if loaded.samples else "empty",
            "root": spec.root,
            "layout": loaded.layout,
            "files": loaded.files,
            "read": len(loaded.samples),
            "rejected": len(loaded.rejected),
            "skipped": len(loaded.skipped),
            "rejected_records": loaded.rejected,
            "skipped_records": loaded.skipped,
        }
        if loaded.samples:
            sets[spec.name] = (loaded.samples, Path(spec.root))
    return sets, report


def undecodable_split(samples: list[Sample], clips: ClipLoader) -> tuple[list[Sample], list[dict[str, str]]]:
    """Split benchmark samples into those whose media decode and a report of those that do not.
    A benchmark's clips are not in the media store, so each is decoded once here (through the
    bounded loader: memory stays flat however large the benchmark)."""
    good, bad = [], []
    for s in samples:
        try:
            clips.get(s)
            good.append(s)
        except MediaError as err:
            bad.append({"id": s.id, "video": s.video, "reason": str(err)})
            log.warning("skipping sample %s: %s", s.id, err)
    return good, bad


def drop_undecodable(sets: dict, report: dict, loaders: dict[str, ClipLoader]) -> None:
    """Leave out benchmark records whose media do not decode, listing them in the report."""
    for name in list(sets):
        if name not in report:
            continue
        samples, root = sets[name]
        good, bad = undecodable_split(samples, loaders[name])
        report[name]["undecodable"] = len(bad)
        report[name]["undecodable_records"] = bad
        report[name]["evaluated"] = len(good)
        if good:
            sets[name] = (good, root)
        else:
            report[name]["status"] = "empty"
            del sets[name]


def export_lm_eval_jsonl(samples: list[Sample], path: str | Path, media_root: str | Path) -> int:
    """Write one JSON line per sample for the avatar_* lm-eval tasks; returns the lines written.

    Fields: id, task, prompt (= format_question(sample), the user text `avatar evaluate` sends),
    answer (the option letter or the number, as text: a column of one type), answer_type,
    choices, video (absolute path, resolved as the clip loader does; '' for text-only samples).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for s in samples:
        s.validate(f"{out}: sample {s.id!r}")
        video = str(resolve_media_path(media_root, s.video)) if s.video else ""
        row = {"id": s.id, "task": s.task, "prompt": format_question(s), "answer": s.answer}
        row |= {"answer_type": s.answer_type, "choices": list(s.choices), "video": video}
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    out.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def _chance(samples: list[Sample]) -> float:
    return chance_level(
        [s.answer_type for s in samples],
        [len(s.choices) for s in samples],
        [s.task for s in samples],
        [s.answer for s in samples],
    )


def run_evaluate(cfg: AvatarConfig, progress: bool = True) -> dict:
    e = cfg.evaluate
    sets: dict[str, tuple[list[Sample], Path | None]] = {s: (load_samples(cfg, s), None) for s in e.splits}
    benchmark_sets, report = load_benchmarks(cfg)
    sets.update(benchmark_sets)
    with ExitStack() as stack:
        # One loader per set for the whole evaluation: the clips decoded by the check below stay in
        # its cache (cache_mb) for every checkpoint and control, so a benchmark that fits is decoded once.
        loaders = {name: stack.enter_context(open_clips(cfg, root=root)) for name, (_, root) in sets.items()}
        drop_undecodable(sets, report, loaders)
        return _evaluate_sets(cfg, sets, report, loaders, progress)


def _evaluate_sets(
    cfg: AvatarConfig, sets: dict, report: dict, loaders: dict[str, ClipLoader], progress: bool
) -> dict:
    e = cfg.evaluate
    for name, (samples, root) in sets.items():
        root = root if root is not None else media_root(cfg)
        export_lm_eval_jsonl(samples, Path(cfg.paths.eval_dir) / "lm_eval" / f"{name}.jsonl", root)
    results: dict = {
        "chance": {},
        "chance_per_task": {},
        "controls": list(e.controls),
        "stages": {},
        "missing_checkpoints": [],
        "benchmarks": report,
    }
    for name, (samples, _) in sets.items():
        results["chance"][name] = _chance(samples)
        by_task: dict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            by_task[s.task].append(s)
        results["chance_per_task"][name] = {t: _chance(v) for t, v in sorted(by_task.items())}
    control_stages = set(e.checkpoints if e.control_checkpoints is None else e.control_checkpoints)
    # The judge check runs first: an unreachable judge fails here, not after the whole evaluation.
    first_set = next(iter(sets.values()), ([], None))[0]
    judge_report = judge_check_for(cfg, first_set, media_root(cfg))
    if judge_report is not None:
        results["judge_check"] = judge_report
    for stage in e.checkpoints:
        if not stage_model_dir(cfg, stage).is_dir():
            log.warning("no checkpoint for stage %s; skipped", stage)
            results["missing_checkpoints"].append(stage)
            continue
        bundle = load_stage_policy(cfg, stage)
        stage_results = {}
        for name, (all_samples, _) in sets.items():
            samples, unfit = fit_samples(
                bundle.kind, all_samples, cfg.model.unsupported_media, f"evaluate {stage}/{name}"
            )
            entry: dict = {"rejected_samples": len(unfit)} if unfit else {}
            runs = ["media", *(e.controls if stage in control_stages else [])]
            loader = loaders[name]
            for run in runs:
                texts = greedy_answers(
                    bundle,
                    samples,
                    control_clips(loader, run),  # blanked on the fly, nothing decoded twice
                    e.max_new_tokens,
                    e.batch_size,
                    desc=f"{stage}/{name} {run}",
                    progress=progress,
                )
                entry[run] = summarise(
                    score_answers(texts, samples), samples, e.bootstrap_samples, e.confidence
                )
                if run == "media":
                    entry["examples"] = [
                        {"id": s.id, "answer": s.answer, "output": t}
                        for s, t in zip(samples[:3], texts[:3], strict=False)
                    ]
                    if name in report:
                        entry["official"] = official_metrics(name, samples, texts)
            stage_results[name] = entry
            log.info(
                "%s on %s: accuracy %.3f%s",
                stage,
                name,
                entry["media"]["accuracy"],
                "".join(f", {c} {entry[c]['accuracy']:.3f}" for c in runs[1:]),
            )
        results["stages"][stage] = stage_results
    out = Path(cfg.paths.eval_dir)
    write_json(out / "results.json", results)
    write_json(out / "metrics.json", flat_metrics(results))
    report_md = markdown_table(results) + "\n" + benchmark_markdown(results)
    if judge_report is not None:
        report_md += judge_markdown(judge_report)
    (out / "results.md").write_text(report_md)
    plot_accuracy(results, out / "accuracy_by_stage.png")
    print(report_md)
    return results
