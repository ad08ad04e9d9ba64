"""`avatar ablate --summary`: the study's tables and figures from every finished cell.

For each setting and variant, over the configured seeds: held-out accuracy at every budget of
generated completions (mean and 95% bootstrap interval over seeds), the final accuracy, the
completions the mean curve needs to reach the baseline's final mean accuracy (the target) and how
many times fewer that is than the baseline needs, the paired per-seed difference of the final
accuracy to the baseline, and from the step logs the share of groups with zero reward variance
(before and after the replay repair; overall and in the first half of training), the mean
importance ratio and truncation rate of replayed tokens, and the hint rate. Intervals resample
seeds (avatar_core.evaluation.study_stats). Writes `results/ablation/results.json`, `results.md`,
`metrics.json` (DVC metrics), `curves.csv` (DVC plots), `curves.png` and `collapse.png`.
A cell that has not finished is reported as missing and left out; no number is made up for it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from avatar_core.config import AvatarConfig
from avatar_core.evaluation.study_stats import (
    completions_to_target,
    mean_with_ci,
    paired_difference,
    ratio_to_target,
)
from avatar_core.recipes.ablation import cell_name
from avatar_core.recipes.common import write_json

log = logging.getLogger(__name__)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def step_summary(records: list[dict[str, Any]]) -> dict[str, float | None]:
    """Means over a cell's RL step log (the first half of training for the `_first_half` keys)."""
    half = records[: max(1, len(records) // 2)]
    return {
        "collapse_before": _mean([r.get("zero_adv_frac_before") for r in records]),
        "collapse_before_first_half": _mean([r.get("zero_adv_frac_before") for r in half]),
        "collapse_after": _mean([r.get("zero_adv_frac_after") for r in records]),
        "replay_ratio_mean": _mean([r.get("replay_ratio_mean") for r in records if r.get("replay_rows")]),
        "replay_truncated_frac": _mean(
            [r.get("replay_truncated_frac") for r in records if r.get("replay_rows")]
        ),
        "replay_share": _mean(
            [
                r.get("replay_rows", 0) / max(1, r.get("replay_rows", 0) + r.get("fresh_rows_trained", 0))
                for r in records
            ]
        ),
        "hint_rate": _mean([r.get("hint_rate") for r in records]),
        "rollout_accuracy_last10": _mean([r.get("accuracy") for r in records[-10:]]),
    }


def load_cells(cfg: AvatarConfig, setting: str, variants: list[str]) -> tuple[dict, list[str]]:
    """{variant: {seed: {"curve": [...], "steps": [...]}}} of the finished cells, and the missing ones."""
    cells: dict[str, dict[int, dict]] = {}
    missing = []
    for variant in variants:
        for seed in cfg.ablation.seeds:
            folder = Path(cfg.paths.ablation_dir) / "cells" / cell_name(setting, variant, seed)
            if not (folder / "done.json").is_file():
                missing.append(cell_name(setting, variant, seed))
                continue
            cells.setdefault(variant, {})[seed] = {
                "curve": _read_jsonl(folder / "curve.jsonl"),
                "steps": _read_jsonl(folder / "log.jsonl"),
            }
    return cells, missing


def summarise_setting(cfg: AvatarConfig, setting: str, variants: list[str]) -> dict[str, Any]:
    ab = cfg.ablation
    boot = {"n_boot": ab.bootstrap_samples, "confidence": ab.confidence}
    cells, missing = load_cells(cfg, setting, variants)
    complete = [v for v in variants if len(cells.get(v, {})) == len(ab.seeds)]
    out: dict[str, Any] = {"variants": {}, "missing_cells": missing, "seeds": list(ab.seeds)}
    if not complete:
        return out
    budgets = [r["completions"] for r in cells[complete[0]][ab.seeds[0]]["curve"]]
    curves = {}
    for v in complete:
        rows = [[r["accuracy"] for r in cells[v][s]["curve"]] for s in ab.seeds]
        if any(len(r) != len(budgets) for r in rows):
            raise ValueError(f"ablation {setting}/{v}: cells evaluated at different budgets; rerun them")
        curves[v] = np.array(rows)  # [S, K]
    base = ab.baseline if ab.baseline in curves else None
    target = float(curves[base][:, -1].mean()) if base else None
    start = float(np.mean([c[:, 0].mean() for c in curves.values()]))  # the shared start checkpoint
    out.update({"budgets": budgets, "baseline": base, "target": target, "start_accuracy": start})
    for v in complete:
        final = curves[v][:, -1]  # [S]
        per_step = [step_summary(cells[v][s]["steps"]) for s in ab.seeds]
        entry: dict[str, Any] = {
            "curve": mean_with_ci(curves[v], **boot),
            "final": {**mean_with_ci(final[:, None], **boot), "per_seed": final.tolist()},
            "steps": {k: _mean([p[k] for p in per_step]) for k in per_step[0]},
            "steps_per_seed": per_step,
        }
        entry["final"] = {
            k: (val[0] if isinstance(val, list) and k != "per_seed" else val)
            for k, val in entry["final"].items()
        }
        if base is not None:
            entry["to_target"] = completions_to_target(curves[v], budgets, target, **boot)
            if v != base:
                entry["vs_baseline"] = paired_difference(final, curves[base][:, -1], **boot)
                entry["fewer_completions_than_baseline"] = ratio_to_target(
                    curves[v], curves[base], budgets, target, **boot
                )
        out["variants"][v] = entry
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(d: dict | None, digits: int = 3, unit: str = "") -> str:
    if d is None:
        return "-"
    if d.get("value", d.get("mean")) is None:
        return "not reached"
    value = d.get("value", d.get("mean"))
    low = "not reached" if d.get("ci_low") is None else f"{d['ci_low']:.{digits}f}{unit}"
    high = "not reached" if d.get("ci_high") is None else f"{d['ci_high']:.{digits}f}{unit}"
    return f"{value:.{digits}f}{unit} [{low}, {high}]"


def markdown(results: dict[str, Any]) -> str:
    lines = []
    for setting, res in results["settings"].items():
        n = len(res.get("seeds", []))
        target = res.get("target")
        lines += [
            f"## setting `{setting}` ({n} seeds; target = `{res.get('baseline')}` final mean accuracy "
            f"{_fmt(target)})",
            "",
            "| variant | final accuracy [95% CI] | completions to target [95% CI] | x fewer than baseline [95% CI] "
            "| paired diff vs baseline [95% CI] | collapsed groups before / after repair | first half |",
            "|---|---|---|---|---|---|---|",
        ]
        for v, e in res["variants"].items():
            st = e["steps"]
            collapse = f"{_fmt(st['collapse_before'], 2)} / {_fmt(st['collapse_after'], 2)}"
            lines.append(
                f"| {v} | {_interval(e['final'])} | {_interval(e.get('to_target'), 0)} | "
                f"{_interval(e.get('fewer_completions_than_baseline'), 2) if 'vs_baseline' in e else '1 (itself)'} | "
                f"{_interval(e.get('vs_baseline')) if 'vs_baseline' in e else '-'} | {collapse} | "
                f"{_fmt(st['collapse_before_first_half'], 2)} |"
            )
        lines += [
            "",
            "| variant | replay share | IS ratio (replayed) | truncated | hint rate | rollout acc. (last 10 steps) |",
            "|---|---|---|---|---|---|",
        ]
        for v, e in res["variants"].items():
            st = e["steps"]
            lines.append(
                f"| {v} | {_fmt(st['replay_share'], 2)} | {_fmt(st['replay_ratio_mean'], 3)} | "
                f"{_fmt(st['replay_truncated_frac'], 3)} | {_fmt(st['hint_rate'], 3)} | "
                f"{_fmt(st['rollout_accuracy_last10'], 3)} |"
            )
        start = res.get("start_accuracy")
        if target is not None and start is not None and target <= start:
            lines += [
                "",
                f"The target ({_fmt(target)}) is at or below the start checkpoint's accuracy ({_fmt(start)}): "
                "every variant meets it before generating anything, so completions-to-target and the "
                "x-fewer ratio say nothing in this setting; compare the final accuracies and the curves.",
            ]
        if res.get("missing_cells"):
            lines += ["", f"Missing cells (not finished, left out): {', '.join(res['missing_cells'])}"]
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = [s for s, r in results["settings"].items() if r["variants"]]
    if not settings:
        return
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 4), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        res = results["settings"][setting]
        for k, (v, e) in enumerate(res["variants"].items()):
            c = e["curve"]
            ax.plot(res["budgets"], c["mean"], marker=".", color=f"C{k}", label=v)
            ax.fill_between(res["budgets"], c["ci_low"], c["ci_high"], color=f"C{k}", alpha=0.15)
        if res.get("target") is not None:
            ax.axhline(res["target"], linestyle=":", color="grey", linewidth=1)
        ax.set_xlabel("completions generated")
        ax.set_ylabel("held-out accuracy (mean over seeds, 95% CI)")
        ax.set_title(f"setting {setting} (dotted: target)", fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 3.5), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        res = results["settings"][setting]
        names = list(res["variants"])
        before = [res["variants"][v]["steps"]["collapse_before"] or 0 for v in names]
        after = [res["variants"][v]["steps"]["collapse_after"] or 0 for v in names]
        x = np.arange(len(names))
        ax.bar(x - 0.2, before, 0.4, label="zero-variance groups")
        ax.bar(x + 0.2, after, 0.4, label="after the replay repair")
        ax.set_xticks(x, names, rotation=20, fontsize=8)
        ax.set_ylabel("share of groups (mean over steps and seeds)")
        ax.set_title(f"advantage collapse, setting {setting}", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "collapse.png", dpi=110)
    plt.close(fig)


def run_summary(cfg: AvatarConfig, studies: dict[str, list[str]]) -> dict[str, Any]:
    """`studies`: setting -> the variants run in it. Writes every output; returns results.json."""
    results = {"stage": cfg.ablation.stage, "start": cfg.ablation.start, "settings": {}}
    for setting, variants in studies.items():
        results["settings"][setting] = summarise_setting(cfg, setting, variants)
    out = Path(cfg.paths.ablation_dir)
    write_json(out / "results.json", results)
    (out / "results.md").write_text(markdown(results))
    metrics = {
        setting: {
            v: {
                "final_accuracy": round(e["final"]["mean"], 4),
                "collapse_before": e["steps"]["collapse_before"],
                **({"completions_to_target": e["to_target"]["value"]} if "to_target" in e else {}),
            }
            for v, e in res["variants"].items()
        }
        for setting, res in results["settings"].items()
    }
    write_json(out / "metrics.json", metrics)
    rows = ["setting,variant,completions,accuracy,ci_low,ci_high"]
    for setting, res in results["settings"].items():
        for v, e in res["variants"].items():
            for b, m, lo, hi in zip(
                res["budgets"], e["curve"]["mean"], e["curve"]["ci_low"], e["curve"]["ci_high"], strict=True
            ):
                rows.append(f"{setting},{v},{b},{m:.4f},{lo:.4f},{hi:.4f}")
    (out / "curves.csv").write_text("\n".join(rows) + "\n")
    plot(results, out)
    print(markdown(results))
    return results
