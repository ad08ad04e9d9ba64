"""`avatar evaluate`: greedy answers of every stage's checkpoint, accuracy with bootstrap intervals.

For each checkpoint in `evaluate.checkpoints` (base, sft, s1, s2, s3; missing ones are reported and
skipped) and each evaluation set (the held-out synthetic/ingested splits and every configured
benchmark adapter), the model answers greedily; an answer is correct when its parsed
`<answer>` matches the option letter (multiple choice) or equals the number (numeric: relative
error below 1e-3). Accuracy is reported overall and per task type with 95% bootstrap intervals,
beside the chance level and, as a control, the accuracy with blanked media (black frames, silence):
an honest task keeps that control near chance. Writes results.json (DVC metrics), results.md and
accuracy_by_stage.png to `paths.eval_dir`, and every evaluation set as
`lm_eval/<set>.jsonl` there for the lm-eval tasks of `avatar_core.evaluation.lm_eval_tasks`.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from avatar_core.config import AvatarConfig
from avatar_core.data.loader import Clips
from avatar_core.data.media import resolve_media_path
from avatar_core.data.schema import Sample, format_question, render_messages
from avatar_core.evaluation.stats import bootstrap_accuracy, chance_level
from avatar_core.recipes.common import (
    load_samples,
    load_stage_policy,
    media_root,
    open_clips,
    stage_model_dir,
    write_json,
)
from avatar_core.rewards import accuracy_reward

log = logging.getLogger(__name__)


def score_answers(texts: list[str], samples: list[Sample]) -> list[float]:
    """1.0 for a correct final answer, else 0.0 (the metric shared with the lm-eval adapter)."""
    values = accuracy_reward(
        texts,
        answer=[s.answer for s in samples],
        answer_type=[s.answer_type for s in samples],
        choices=[list(s.choices) for s in samples],
        numeric_mode="binary",
        numeric_tol=1e-3,
    )
    return [float(v or 0.0) for v in values]


@torch.no_grad()
def greedy_answers(
    bundle,
    samples: list[Sample],
    clips: Clips,
    max_new_tokens: int,
    batch_size: int,
    desc: str = "evaluate",
    progress: bool = True,
) -> list[str]:
    from avatar_core.models.generation import generate_rollouts
    from avatar_core.models.inputs import encode_prompts

    bundle.model.eval()
    texts: list[str] = []
    for i in tqdm(range(0, len(samples), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = samples[i : i + batch_size]
        clips.prefetch(samples[i + batch_size : i + 2 * batch_size])  # read while this chunk generates
        inputs = encode_prompts(bundle, [render_messages(s) for s in chunk], clips.get_many(chunk))
        out = generate_rollouts(bundle, inputs, group_size=1, max_new_tokens=max_new_tokens, greedy=True)
        texts += out.texts
    return texts


def summarise(scores: list[float], samples: list[Sample], n_boot: int, confidence: float) -> dict:
    overall = bootstrap_accuracy(scores, n_boot, confidence).as_dict()
    by_task: dict[str, list[float]] = defaultdict(list)
    for s, v in zip(samples, scores, strict=True):
        by_task[s.task].append(v)
    overall["per_task"] = {
        t: bootstrap_accuracy(v, n_boot, confidence).as_dict() for t, v in sorted(by_task.items())
    }
    return overall


def evaluation_sets(cfg: AvatarConfig) -> dict[str, tuple[list[Sample], Path | None]]:
    sets: dict[str, tuple[list[Sample], Path | None]] = {}
    for split in cfg.evaluate.splits:
        sets[split] = (load_samples(cfg, split), None)
    for spec in cfg.evaluate.benchmarks:
        from avatar_core.data.benchmarks import load_benchmark

        loaded = load_benchmark(spec.name, spec.root, limit=spec.limit)
        for r in loaded.rejected:
            log.warning("benchmark %s: rejected record %s", spec.name, r)
        sets[spec.name] = (loaded.samples, Path(spec.root))
    return sets


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


def run_evaluate(cfg: AvatarConfig, progress: bool = True) -> dict:
    e = cfg.evaluate
    sets = evaluation_sets(cfg)
    for name, (samples, root) in sets.items():
        root = root if root is not None else media_root(cfg)
        export_lm_eval_jsonl(samples, Path(cfg.paths.eval_dir) / "lm_eval" / f"{name}.jsonl", root)
    results: dict = {"chance": {}, "stages": {}, "missing_checkpoints": []}
    for name, (samples, _) in sets.items():
        results["chance"][name] = chance_level(
            [s.answer_type for s in samples],
            [len(s.choices) for s in samples],
            [s.task for s in samples],
            [s.answer for s in samples],
        )
    for stage in e.checkpoints:
        if not stage_model_dir(cfg, stage).is_dir():
            log.warning("no checkpoint for stage %s; skipped", stage)
            results["missing_checkpoints"].append(stage)
            continue
        bundle = load_stage_policy(cfg, stage)
        stage_results = {}
        for name, (samples, root) in sets.items():
            entry = {}
            clips = open_clips(cfg, root=root)
            for blank in (False, True) if e.blank_media_control else (False,):
                texts = greedy_answers(
                    bundle,
                    samples,
                    clips.blanked(video=True, audio=True) if blank else clips,
                    e.max_new_tokens,
                    e.batch_size,
                    desc=f"{stage}/{name}{' blank' if blank else ''}",
                    progress=progress,
                )
                scores = score_answers(texts, samples)
                entry["blank_media" if blank else "media"] = summarise(
                    scores, samples, e.bootstrap_samples, e.confidence
                )
                if not blank:
                    entry["examples"] = [
                        {"id": s.id, "answer": s.answer, "output": t}
                        for s, t in zip(samples[:3], texts[:3], strict=False)
                    ]
            stage_results[name] = entry
            log.info("%s on %s: accuracy %.3f", stage, name, entry["media"]["accuracy"])
        results["stages"][stage] = stage_results
    out = Path(cfg.paths.eval_dir)
    write_json(out / "results.json", results)
    write_json(out / "metrics.json", flat_metrics(results))
    (out / "results.md").write_text(markdown_table(results))
    plot_accuracy(results, out / "accuracy_by_stage.png")
    print(markdown_table(results))
    return results


def flat_metrics(results: dict) -> dict:
    """`{stage: {set: accuracy}}` plus blank-media accuracy: the compact form `dvc metrics show` prints."""
    flat: dict = {}
    for stage, sets in results["stages"].items():
        for name, entry in sets.items():
            flat.setdefault(stage, {})[name] = round(entry["media"]["accuracy"], 4)
            if "blank_media" in entry:
                flat[stage][f"{name}_blank"] = round(entry["blank_media"]["accuracy"], 4)
    return flat


def markdown_table(results: dict) -> str:
    lines = [
        "| stage | set | accuracy | 95% CI | n | blank media | chance |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage, sets in results["stages"].items():
        for name, entry in sets.items():
            m = entry["media"]
            blank = f"{entry['blank_media']['accuracy']:.3f}" if "blank_media" in entry else "-"
            lines.append(
                f"| {stage} | {name} | {m['accuracy']:.3f} | [{m['ci_low']:.3f}, {m['ci_high']:.3f}] | "
                f"{m['n']} | {blank} | {results['chance'][name]:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot_accuracy(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(results["stages"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in results["chance"]:
        acc = [results["stages"][s][name]["media"] for s in stages if name in results["stages"][s]]
        if not acc:
            continue
        y = [a["accuracy"] for a in acc]
        err = [[a["accuracy"] - a["ci_low"] for a in acc], [a["ci_high"] - a["accuracy"] for a in acc]]
        ax.errorbar(stages[: len(y)], y, yerr=err, marker="o", capsize=3, label=name)
        ax.axhline(results["chance"][name], linestyle=":", color="grey")
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_ylim(0, 1)
    ax.set_title("held-out accuracy by curriculum stage (dotted: chance)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
