"""Benchmark: where the time of one RL step goes on the tiny model, by phase.

Builds a small project once (synthetic data, the tiny base model, a short SFT run, the way
tests/recipes/recipe_helpers.py `tiny_config` does), then runs a short RL stage S1 in a fresh
subprocess per configuration and reads the per-step timings `avatar_core.recipes.rl.run_rl`
writes to `runs/s1/log.jsonl`:
- `time_generation`: prompt encoding and the G rollouts per prompt (no_grad sampling);
- `time_reward`: the stage's reward functions on the completions;
- `time_buffer`: group advantages, the reference model's forward for the per-prompt KL (run when
  beta > 0 or the hint KL trigger is on, as in S1 of the embedded default), difficulty tracking,
  augmenting collapsed groups, replay sampling;
- `time_loss`: collating the batch, policy forward, objective (fused kernel or plain path), backward;
- `time_optimizer`: gradient clipping, optimiser and scheduler step.
Configurations: intra-op threads 1 (`num_threads: 1` in params.yaml, applied through
`avatar_core.recipes.common.set_threads`) against torch's default (one per core), crossed with
`rl.s1.objective.use_fused_kernel` true and false. The step shape is that of params.yaml's S1
(prompts_per_step, group_size, max_new_tokens), so the numbers describe the embedded default.
The first `--skip` steps of each run are warm-up (lazy imports, first allocations) and are
left out of the medians; every step's timings are kept in the JSON. Medians are per phase; the
share of a phase is its median over the sum of the phase medians. The completions per step are
recorded too: the policy stops at its end token, so the generation time depends on how long its
answers are, which the SFT run fixes for all configurations alike.

    python benchmarks/bench_rl_step.py --steps 8 --out benchmarks/results/rl_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import cpu_model, uptime

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without install

PHASES = ("time_generation", "time_reward", "time_buffer", "time_loss", "time_optimizer")
CONFIGS = [  # (label, intra-op threads (0: torch's default), fused kernel)
    ("threads 1, fused", 1, True),
    ("threads 1, plain", 1, False),
    ("torch default, fused", 0, True),
    ("torch default, plain", 0, False),
]


def project_config(root: Path, steps: int, sft_steps: int) -> dict:
    """params.yaml with every path under root, a small data set and a short SFT run."""
    from avatar_core.config import load_config

    base = load_config(REPO / "params.yaml").model_dump(mode="json")
    base["paths"] = {k: str(root / Path(v)) for k, v in base["paths"].items()}
    # 32 training clips give S1 (count_flashes) 8 prompts; 150 SFT steps teach the answer format
    base["data"]["synthetic"].update(n_train=32, n_val=4, n_test=8)
    base["sft"].update(max_steps=sft_steps, batch_size=4, save_every=10_000)
    base["sft"]["optim"].update(lr=3e-3)
    base["rl"]["s1"].update(steps=steps, save_every=steps, log_every=1)
    return base


def build_project(config: dict) -> None:
    """Ingest (data + tiny base model) and SFT, on one thread (the fastest setting here)."""
    from avatar_core.config import config_from_dict
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.ingest import run_ingest
    from avatar_core.recipes.sft import run_sft

    set_threads(1)
    cfg = config_from_dict(config)
    run_ingest(cfg, progress=False)
    run_sft(cfg, progress=False)


def worker(config_path: Path, threads: int, fused: bool, run_root: Path) -> dict:
    """Run RL stage S1 with one configuration in this process; return its step log."""
    import torch

    from avatar_core.config import config_from_dict
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.rl import run_rl

    config = json.loads(config_path.read_text())
    config["num_threads"] = threads
    config["rl"]["s1"]["objective"]["use_fused_kernel"] = fused
    for key in ("rl_dir", "runs_dir", "metrics_dir"):  # each configuration writes its own outputs
        config["paths"][key] = str(run_root / key)
    cfg = config_from_dict(config)
    set_threads(cfg.num_threads)  # what `avatar rl` does (cli.py); 0 keeps torch's default
    start = time.perf_counter()
    run_rl(cfg, "s1", progress=False)
    log_path = Path(cfg.paths.runs_dir) / "s1" / "log.jsonl"
    steps = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return {
        "threads": torch.get_num_threads(),
        "fused": fused,
        "stage_s": time.perf_counter() - start,
        "steps": [{k: s.get(k) for k in ("step", "completions", "reward_mean", *PHASES)} for s in steps],
    }


def summarise(label: str, run: dict, skip: int) -> dict:
    timed = run["steps"][skip:]
    if not timed:
        raise SystemExit(f"{label}: only {len(run['steps'])} steps logged, none left after --skip {skip}")
    medians = {p: statistics.median(s[p] for s in timed) for p in PHASES}
    total = sum(medians.values())
    step_totals = [sum(s[p] for p in PHASES) for s in timed]
    return {
        "label": label,
        **{k: run[k] for k in ("threads", "fused", "stage_s")},
        "timed_steps": len(timed),
        "median_s": medians,
        "share": {p: m / total for p, m in medians.items()},
        "sum_of_medians_s": total,
        "step_s_median": statistics.median(step_totals),
        "steps": run["steps"],
    }


def markdown(rows: list[dict]) -> str:
    names = [p.removeprefix("time_") for p in PHASES]
    head = "| configuration | threads | " + " | ".join(f"{n} s (share)" for n in names)
    lines = [head + " | step s | vs threads 1, fused |", "|---" * (len(PHASES) + 4) + "|"]
    baseline = rows[0]["step_s_median"]
    for r in rows:
        cells = " | ".join(f"{r['median_s'][p]:.3f} ({100 * r['share'][p]:.0f}%)" for p in PHASES)
        lines.append(
            f"| {r['label']} | {r['threads']} | {cells} | {r['step_s_median']:.2f} | "
            f"{r['step_s_median'] / baseline:.2f}x |"
        )
    return "\n".join(lines)


def in_subprocess(*argv: str) -> str:
    """Run this script with argv in a fresh interpreter (own thread pool, own caches); its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=8, help="RL steps per configuration")
    parser.add_argument("--skip", type=int, default=1, help="warm-up steps left out of the medians")
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--project", type=Path, default=None, help="reuse (or build) the project here")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rl_step.json"))
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)  # config, threads, fused, run dir
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # config of the project to build
    args = parser.parse_args()
    if args.build:
        build_project(json.loads(args.build.read_text()))
        return
    if args.worker:
        config, threads, fused, run_root = args.worker
        print(json.dumps(worker(Path(config), int(threads), fused == "1", Path(run_root))))
        return
    if args.steps <= args.skip:
        parser.error(f"--steps {args.steps} must exceed --skip {args.skip}")

    with tempfile.TemporaryDirectory() as tmp:
        root = (args.project or Path(tmp) / "project").resolve()
        config_path = root / "bench_config.json"
        config = project_config(root, args.steps, args.sft_steps)
        start = time.perf_counter()
        if not (Path(config["paths"]["sft_dir"]) / "done.json").is_file():
            root.mkdir(parents=True, exist_ok=True)
            config_path.write_text(json.dumps(config))
            in_subprocess("--build", str(config_path))
        config_path.write_text(json.dumps(config))
        build_s = time.perf_counter() - start
        before = uptime()
        rows = []
        for index, (label, threads, fused) in enumerate(CONFIGS):
            run_root = Path(tmp) / f"run{index}"
            out = in_subprocess("--worker", str(config_path), str(threads), str(int(fused)), str(run_root))
            rows.append(summarise(label, json.loads(out.strip().splitlines()[-1]), args.skip))
            rows[-1]["uptime_after"] = uptime()
            print(
                f"{label}: {rows[-1]['step_s_median']:.2f} s/step ({rows[-1]['uptime_after']})",
                file=sys.stderr,
            )
        after = uptime()
    import torch

    s1 = config["rl"]["s1"]
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "step_shape": {
            "prompts_per_step": s1["prompts_per_step"],
            "group_size": s1["group_size"],
            "max_new_tokens": s1["generation"]["max_new_tokens"],
            "objective": s1["objective"]["name"],
            "beta": s1["objective"]["beta"],
            "replay_per_step": s1["buffer"]["replay_per_step"],
        },
        "model": config["model"]["tiny"],
        "steps": args.steps,
        "skip": args.skip,
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "uptime_before": before,
            "uptime_after": after,
        },
        "build_s": build_s,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
