"""What `avatar evaluate` writes from its results: compact DVC metrics, a Markdown report, a plot.

`results` is the dict of results.json: `chance` (per evaluation set, and per task family under
`chance_per_task`), `controls` (the blanked-media controls that were run), `stages` ->
checkpoint -> set -> {`media`, one entry per control, `examples`, and for a benchmark
`official`, its own metrics}, each entry an accuracy summary with `per_task`, and `benchmarks`,
what each configured benchmark read or why it was not evaluated. The report puts every control beside the accuracy with media, overall and per
task family, so a reader sees at once which modality each family depends on.
"""

from __future__ import annotations

from pathlib import Path

from avatar_core.evaluation.official import official_markdown
from avatar_core.evaluation.scoring import CONTROLS

CONTROL_TITLES = {"blank_media": "blank media", "blank_video": "blank video", "blank_audio": "blank audio"}


def _controls(results: dict) -> list[str]:
    return [c for c in CONTROLS if c in results.get("controls", [])]


def flat_metrics(results: dict) -> dict:
    """`{stage: {set: accuracy, set_<control>: accuracy, set/<task>: accuracy}}` for `dvc metrics show`,
    plus each benchmark's headline official metrics `official: {benchmark: {stage: {metric, n}}}`."""
    flat: dict = {}
    for stage, sets in results["stages"].items():
        row = flat.setdefault(stage, {})
        for name, entry in sets.items():
            row[name] = round(entry["media"]["accuracy"], 4)
            for control in _controls(results):
                if control in entry:
                    row[f"{name}_{control}"] = round(entry[control]["accuracy"], 4)
            for task, acc in entry["media"].get("per_task", {}).items():
                row[f"{name}/{task}"] = round(acc["accuracy"], 4)
    official = {
        bench: {
            stage: {**{k: round(v, 4) for k, v in r["metrics"].items()}, "n": r["n"]}
            for stage, r in stages.items()
        }
        for bench, stages in official_by_benchmark(results).items()
    }
    if official:
        flat["official"] = official
    return flat


def official_by_benchmark(results: dict) -> dict[str, dict[str, dict]]:
    """`{benchmark: {stage: official metrics}}` from the per-stage entries."""
    official: dict[str, dict[str, dict]] = {}
    for stage, sets in results["stages"].items():
        for name, entry in sets.items():
            if "official" in entry:
                official.setdefault(name, {})[stage] = entry["official"]
    return official


def benchmark_markdown(results: dict) -> str:
    """What each configured benchmark read (layout, records) or why it was not evaluated, then
    its official metrics."""
    lines = []
    for name, r in results.get("benchmarks", {}).items():
        if r["status"] == "missing":
            lines.append(f"- {name}: not evaluated: {r['reason']}")
            continue
        lines.append(
            f"- {name}: {r['status']}; layout: {r['layout']}; {r['read']} records read, "
            f"{r['rejected']} rejected, {r['skipped']} skipped, {r.get('undecodable', 0)} undecodable"
        )
    head = "## Benchmarks\n\n" + "\n".join(lines) + "\n" if lines else ""
    official = official_markdown(official_by_benchmark(results))
    return head + ("\n" + official if official else "")


def _cell(entry: dict, key: str, task: str | None = None) -> str:
    summary = entry.get(key)
    if summary is None:
        return "-"
    if task is not None:
        summary = summary.get("per_task", {}).get(task)
        if summary is None:
            return "-"
    return f"{summary['accuracy']:.3f}"


def _ci(summary: dict) -> str:
    return f"[{summary['ci_low']:.3f}, {summary['ci_high']:.3f}]"


def markdown_table(results: dict) -> str:
    """One overall table per evaluation set, then one row per task family and stage."""
    controls = _controls(results)
    heads = [CONTROL_TITLES[c] for c in controls]
    out: list[str] = []
    for name, chance in results["chance"].items():
        stages = [s for s in results["stages"] if name in results["stages"][s]]
        if not stages:
            continue
        n = results["stages"][stages[0]][name]["media"]["n"]
        out += [f"## {name} (n = {n}, chance {chance:.3f})", ""]
        out += [
            "| stage | accuracy | 95% CI | " + " | ".join(heads) + " |"
            if heads
            else "| stage | accuracy | 95% CI |"
        ]
        out += ["|---|---|---|" + "---|" * len(heads)]
        for stage in stages:
            entry = results["stages"][stage][name]
            cells = [_cell(entry, c) for c in controls]
            out.append(
                f"| {stage} | {entry['media']['accuracy']:.3f} | {_ci(entry['media'])} | "
                + "".join(f"{c} | " for c in cells).rstrip()
            )
        tasks = sorted({t for s in stages for t in results["stages"][s][name]["media"].get("per_task", {})})
        if len(tasks) > 1:
            per_task_chance = results.get("chance_per_task", {}).get(name, {})
            out += ["", f"Per task family ({name}):", ""]
            out += [
                "| family | stage | accuracy | 95% CI | " + "".join(f"{h} | " for h in heads) + "chance |"
            ]
            out += ["|---|---|---|---|" + "---|" * len(heads) + "---|"]
            for task in tasks:
                for stage in stages:
                    entry = results["stages"][stage][name]
                    acc = entry["media"]["per_task"].get(task)
                    if acc is None:
                        continue
                    cells = "".join(f"{_cell(entry, c, task)} | " for c in controls)
                    chance_t = per_task_chance.get(task)
                    chance_cell = f"{chance_t:.3f}" if chance_t is not None else "-"
                    out.append(
                        f"| {task} | {stage} | {acc['accuracy']:.3f} | {_ci(acc)} | {cells}{chance_cell} |"
                    )
        out.append("")
    return "\n".join(out)


def plot_accuracy(results: dict, path: str | Path) -> None:
    """Accuracy by stage with its interval, one panel per evaluation set (overall and per family),
    the controls as dashed lines of the same colour and chance as a dotted grey line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [n for n in results["chance"] if any(n in v for v in results["stages"].values())]
    panels: list[tuple[str, str | None]] = []
    for name in sets:
        panels.append((name, None))
        tasks = sorted(
            {t for v in results["stages"].values() if name in v for t in v[name]["media"].get("per_task", {})}
        )
        if len(tasks) > 1:
            panels += [(name, t) for t in tasks]
    if not panels:
        return
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    styles = {"blank_media": ":", "blank_video": "--", "blank_audio": "-."}
    for ax, (name, task) in zip(axes.flat, panels, strict=False):
        stages = [s for s in results["stages"] if name in results["stages"][s]]

        def pick(entry: dict, key: str, task: str | None = task) -> dict | None:
            summary = entry.get(key)
            return summary if task is None or summary is None else summary.get("per_task", {}).get(task)

        acc = [pick(results["stages"][s][name], "media") for s in stages]
        xs = [s for s, a in zip(stages, acc, strict=True) if a is not None]
        acc = [a for a in acc if a is not None]
        y = [a["accuracy"] for a in acc]
        err = [[a["accuracy"] - a["ci_low"] for a in acc], [a["ci_high"] - a["accuracy"] for a in acc]]
        ax.errorbar(xs, y, yerr=err, marker="o", capsize=3, label="media", color="C0")
        for k, control in enumerate(_controls(results)):
            values = [pick(results["stages"][s][name], control) for s in xs]
            pts = [(s, v["accuracy"]) for s, v in zip(xs, values, strict=True) if v is not None]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    linestyle=styles[control],
                    marker=".",
                    color=f"C{k + 1}",
                    label=CONTROL_TITLES[control],
                )
        chance = (
            results["chance"][name]
            if task is None
            else results.get("chance_per_task", {}).get(name, {}).get(task)
        )
        if chance is not None:
            ax.axhline(chance, linestyle=":", color="grey", linewidth=1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{name}: {task or 'all'}", fontsize=10)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("accuracy (95% CI)")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "held-out accuracy by curriculum stage, with media and with parts blanked (dotted grey: chance)",
        fontsize=10,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
