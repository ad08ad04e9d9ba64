"""The Markdown tables of bench_scale.py's result JSON: medians per cell, RSS growth per 1,000 clips,
throughput against the raw decoder, RL steps/s on the default.

    python benchmarks/scale_report.py benchmarks/results/scale_cpu.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def tables(result: dict) -> str:
    lines = []
    runs = [r for r in result.get("stages", []) if r["stage"] != "ingest"]
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["size"], r["stage"], r["variant"]), []).append(r)
    rows = [
        {"size": size, "stage": stage, "variant": variant, "n": len(group)}
        | {k: statistics.median(r[k] for r in group) for k in ("first_step_s", "cpu_first_step_s", "peak_rss_mib", "rss_first_step_mib")}
        for (size, stage, variant), group in groups.items()
    ]  # fmt: skip
    if rows:
        lines += ["Medians over the runs (n) of each cell:", "",
                  "| clips | stage | code | n | time to first step s | CPU s to first step | peak RSS MiB | RSS at first step MiB |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in sorted(rows, key=lambda r: (r["stage"], r["size"], r["variant"] != "before")):
            lines.append(f"| {r['size']:,} | {r['stage']} | {r['variant']} | {r['n']} | {r['first_step_s']:.1f} | "
                         f"{r['cpu_first_step_s']:.1f} | {r['peak_rss_mib']:,.0f} | {r['rss_first_step_mib']:,.0f} |")  # fmt: skip
        sizes = sorted({r["size"] for r in rows})
        if len(sizes) > 1:
            lines += ["", "| stage | code | peak RSS growth per 1,000 clips MiB |", "|---|---|---|"]
            for stage in ("sft", "s1"):
                for variant in ("before", "after"):
                    peak = {
                        r["size"]: r["peak_rss_mib"]
                        for r in rows
                        if (r["stage"], r["variant"]) == (stage, variant)
                    }
                    if len(peak) == len(sizes):
                        growth = (peak[sizes[-1]] - peak[sizes[0]]) / (sizes[-1] - sizes[0]) * 1000
                        lines.append(f"| {stage} | {variant} | {growth:,.0f} |")
    for key, source in (
        ("throughput", "640x360, resized to 588x336"),
        ("throughput_448", "448x448, no resize"),
    ):
        if key not in result:
            continue
        t = result[key]
        med = {k: statistics.median(v) for k, v in t["clips_per_s"].items()}
        cpu = {k: statistics.median(v) for k, v in t["cpu_s_per_clip"].items()}
        lines += ["", f"Clips of {source}, {t['clips']} of them:", "",
                  "| mode | workers | clips/s (median) | vs raw (clips/s) | 2 workers / 1 | CPU s per clip (median) | vs raw (CPU) |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for mode in ("raw", "raw+scale", "raw+pil", "ours"):
            for w in (1, 2):
                if f"{mode}/{w}" not in med:
                    continue
                ratio = med[f"{mode}/{w}"] / med[f"raw/{w}"]
                scale = f"{med[f'{mode}/2'] / med[f'{mode}/1']:.2f}x" if w == 2 else "-"
                cpu_ratio = cpu[f"raw/{w}"] / cpu[f"{mode}/{w}"]
                lines.append(f"| {mode} | {w} | {med[f'{mode}/{w}']:.2f} | {ratio:.2f}x | {scale} | "
                             f"{cpu[f'{mode}/{w}']:.3f} | {cpu_ratio:.2f}x |")  # fmt: skip
    if "default_rl" in result:
        d = result["default_rl"]
        lines += ["", "| code | median s/step per run | median CPU s/step per run | steps/s (median of runs) |",
                  "|---|---|---|---|"]  # fmt: skip
        for variant, values in d["median_step_s"].items():
            if values:
                cpus = ", ".join(f"{v:.3f}" for v in d["median_step_cpu_s"][variant])
                lines.append(f"| {variant} | {', '.join(f'{v:.3f}' for v in values)} | {cpus} | "
                             f"{1 / statistics.median(values):.2f} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(tables(json.loads(Path(name).read_text())))
