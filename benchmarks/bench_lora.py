"""Benchmark: memory and time of a training step with LoRA against a full fine-tune.

Builds a project once (synthetic data as tests/recipes/recipe_helpers.py makes it, 32 training
clips) whose base model is a random-weight Qwen2.5-Omni-7B-layout checkpoint at a mid size
(`--hidden`, `--layers`; the real 152,064-token vocabulary; tiny encoders), and one full SFT
step so RL has its starting checkpoint. Then, per configuration (full fine-tune, LoRA r 8 /
alpha 32 on all linear layers), each in a fresh process:
- SFT: `--steps` optimiser steps of the recipe's loss (`sft_loss`, the loop of recipes/sft.py:
  micro-batch of `--batch` clips, backward, clipping, AdamW), timed one by one;
- RL update: `--steps` updates of the recipe's loss path (`objective_step`: AVATAR objective,
  fused kernel, KL to the reference with beta 0.1; clipping; AdamW) on the rows of one rollout
  batch (2 prompts x G = 4, up to `--new-tokens` tokens), timed one by one; the reference is a
  second frozen copy for the full fine-tune and the adapter switched off for LoRA;
- RL stage: S1 through `run_rl` for `--steps` steps, its per-step `time_loss` +
  `time_optimizer` (the update) and `time_generation` as the recipe logs them.
Memory: peak RSS of the process (`ru_maxrss`) and its growth over the RSS once the policy (and
reference) are loaded, i.e. what training adds: gradients, optimiser state, activations. Time:
process CPU time per step (all threads; robust to other jobs on a shared machine) and wall time.
The first `--skip` steps are warm-up and left out of the medians; all steps are in the JSON.

    python benchmarks/bench_lora.py --out benchmarks/results/lora_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import cpu_model, uptime

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without install
sys.path.insert(0, str(REPO / "tests" / "recipes"))

CONFIGS = [("full fine-tune", False), ("LoRA r 8", True)]


def rss_gib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def project_config(root: Path, args: argparse.Namespace) -> dict:
    from recipe_helpers import tiny_config

    data = tiny_config(root).model_dump(mode="json")
    data["num_threads"] = args.threads
    data["data"]["synthetic"].update(n_train=32, n_val=4, n_test=8)
    data["model"]["name_or_path"] = str(root / "layout")
    data["sft"].update(max_steps=1, batch_size=args.batch)
    s1 = data["rl"]["s1"]
    s1.update(steps=args.steps, prompts_per_step=2, group_size=4, save_every=10_000)
    s1["generation"]["max_new_tokens"] = args.new_tokens
    s1["objective"]["beta"] = 0.1
    s1["buffer"].update(min_size=4, replay_per_step=4)
    return data


def build(config: dict, args: argparse.Namespace) -> None:
    from avatar_core.config import config_from_dict
    from avatar_core.models.layouts import write_layout
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.ingest import run_ingest
    from avatar_core.recipes.sft import run_sft

    set_threads(args.threads)
    cfg = config_from_dict(config)
    run_ingest(cfg, progress=False)
    dims = {"hidden": args.hidden, "layers": args.layers, "heads": args.hidden // 64, "kv_heads": 2}
    dims["intermediate"] = 4 * args.hidden
    write_layout("qwen2_5_omni_7b", cfg.model.name_or_path, dims=dims, corpus=["How many flashes?"])
    run_sft(cfg, progress=False)  # the full checkpoint both configurations start RL from


def sft_worker(config: dict, lora: bool, run_root: Path, args: argparse.Namespace) -> dict:
    import numpy as np

    from avatar_core.config import config_from_dict
    from avatar_core.recipes.common import load_samples, open_clips, set_threads
    from avatar_core.recipes.distributed import Distributed
    from avatar_core.recipes.policy import load_trainable_policy
    from avatar_core.recipes.rl_parts import build_optimizer
    from avatar_core.recipes.sft import sft_loss

    config["model"]["lora"]["enabled"] = lora
    cfg = config_from_dict(config)
    set_threads(cfg.num_threads)
    dist = Distributed()
    bundle = load_trainable_policy(cfg, "base", dist)
    samples = [s for s in load_samples(cfg, "train") if s.reasoning]
    clips = open_clips(cfg)
    clips.get_many(samples)  # decode once, outside the timed steps
    loaded = rss_gib()
    optimizer, _ = build_optimizer(bundle.model, cfg.sft.optim, args.steps)
    rng = np.random.default_rng(0)
    bundle.model.train()
    steps = []
    for _ in range(args.steps):
        batch = [samples[i] for i in rng.choice(len(samples), size=args.batch, replace=False)]
        wall, cpu = time.perf_counter(), time.process_time()
        sft_loss(bundle, batch, clips).backward()
        dist.clip_grad_norm_(bundle.model, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps.append({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu})
    trainable = sum(p.numel() for p in bundle.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in bundle.model.parameters())
    return {
        "steps": steps,
        "loaded_gib": loaded,
        "peak_gib": peak_gib(),
        "trainable": trainable,
        "total": total,
    }


def update_worker(config: dict, lora: bool, run_root: Path, args: argparse.Namespace) -> dict:
    """RL updates alone, timed one by one: `objective_step` (AVATAR objective, fused kernel, KL to
    the reference with beta 0.1), clipping, AdamW, on the rows of one fixed rollout batch."""
    import torch

    from avatar_core.config import config_from_dict
    from avatar_core.data.schema import render_messages
    from avatar_core.models.generation import generate_rollouts
    from avatar_core.models.inputs import encode_prompts
    from avatar_core.recipes.common import load_samples, open_clips, set_threads
    from avatar_core.recipes.distributed import Distributed
    from avatar_core.recipes.policy import load_trainable_policy, reference_policy
    from avatar_core.recipes.rl import objective_params
    from avatar_core.recipes.rl_batch import collate, rows_from_rollouts
    from avatar_core.recipes.rl_parts import build_optimizer, objective_step

    config["model"]["lora"]["enabled"] = lora
    cfg = config_from_dict(config)
    scfg = cfg.rl.s1
    set_threads(cfg.num_threads)
    dist = Distributed()
    bundle = load_trainable_policy(cfg, "sft", dist)
    ref = reference_policy(cfg, bundle, "sft", dist)  # a frozen copy, or the adapter switched off
    loaded = rss_gib()
    clips = open_clips(cfg)
    samples = load_samples(cfg, "train", scfg.tasks)[: scfg.prompts_per_step]
    inputs = encode_prompts(bundle, [render_messages(x) for x in samples], clips.get_many(samples))
    rollouts = generate_rollouts(
        bundle, inputs, group_size=scfg.group_size, max_new_tokens=args.new_tokens, seed=0
    )
    n = rollouts.completion_ids.shape[0]
    rewards = [float(i % 2) for i in range(n)]
    advantages = torch.tensor([1.0 if r else -1.0 for r in rewards])  # [N]
    rows = rows_from_rollouts(samples, [False] * len(samples), rollouts, rewards, advantages)
    optimizer, _ = build_optimizer(bundle.model, scfg.optim, args.steps)
    bundle.model.train()
    steps = []
    for _ in range(args.steps):
        wall, cpu = time.perf_counter(), time.process_time()
        tb = collate(bundle, rows, clips, {}, bundle.tokenizer.pad_token_id)
        objective_step(bundle, ref, tb, objective_params(scfg), scfg, dist)
        dist.clip_grad_norm_(bundle.model, scfg.optim.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps.append({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu})
    tokens = int(rollouts.completion_mask.sum())
    return {
        "steps": steps,
        "loaded_gib": loaded,
        "peak_gib": peak_gib(),
        "rows": n,
        "completion_tokens": tokens,
    }


def rl_worker(config: dict, lora: bool, run_root: Path, args: argparse.Namespace) -> dict:
    from avatar_core.config import config_from_dict
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.rl import run_rl

    config["model"]["lora"]["enabled"] = lora
    for key in ("rl_dir", "runs_dir", "metrics_dir"):
        config["paths"][key] = str(run_root / key)
    cfg = config_from_dict(config)
    set_threads(cfg.num_threads)
    run_rl(cfg, "s1", progress=False)
    log = [json.loads(line) for line in (Path(cfg.paths.runs_dir) / "s1" / "log.jsonl").open()]
    steps = [
        {"update_s": r["time_loss"] + r["time_optimizer"], "generation_s": r["time_generation"]} for r in log
    ]
    return {"steps": steps, "peak_gib": peak_gib()}


def in_subprocess(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(steps: list[dict], key: str, skip: int) -> float:
    return statistics.median(s[key] for s in steps[skip:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=512, help="text hidden size (heads of 64)")
    parser.add_argument("--layers", type=int, default=8, help="text decoder layers")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--skip", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4, help="SFT micro-batch (clips)")
    parser.add_argument("--new-tokens", type=int, default=24, help="RL completion length limit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lora_cpu.json"))
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)  # kind, config, lora, run dir
    args = parser.parse_args()
    if args.worker:
        kind, config_path, lora, run_root = args.worker
        config = json.loads(Path(config_path).read_text())
        fn = {"build": None, "sft": sft_worker, "update": update_worker, "rl": rl_worker}[kind]
        if fn is None:
            build(config, args)
            print("{}")
        else:
            print(json.dumps(fn(config, lora == "1", Path(run_root), args)))
        return
    passthrough = [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("out", "worker")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        config = project_config(root, args)
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config))
        in_subprocess(*passthrough, "--worker", "build", str(config_path), "0", tmp)
        before = uptime()
        rows = []
        for label, lora in CONFIGS:
            flag = str(int(lora))
            sft = in_subprocess(*passthrough, "--worker", "sft", str(config_path), flag, tmp)
            update = in_subprocess(*passthrough, "--worker", "update", str(config_path), flag, tmp)
            rl = in_subprocess(*passthrough, "--worker", "rl", str(config_path), flag, f"{tmp}/{flag}")
            rows.append({"label": label, "lora": lora, "sft": sft, "update": update, "rl": rl})
            print(f"{label}: done ({uptime()})", file=sys.stderr)
        after = uptime()
    import torch

    def cell(row: dict, part: str, key: str) -> str:
        value = median(row[part]["steps"], key, args.skip)
        return f"{value:.2f} ({value / median(rows[0][part]['steps'], key, args.skip):.2f}x)"

    table = [
        "| configuration | trainable params | SFT step CPU s | SFT step wall s | SFT peak RSS GiB "
        "(growth over loaded) | RL update CPU s | RL update wall s | RL update peak RSS GiB (growth) "
        "| RL stage: update / generation wall s | RL stage peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, u, q = r["sft"], r["update"], r["rl"]
        table.append(
            f"| {r['label']} | {s['trainable'] / 1e6:.1f}M of {s['total'] / 1e6:.1f}M | "
            f"{cell(r, 'sft', 'cpu_s')} | {cell(r, 'sft', 'wall_s')} | "
            f"{s['peak_gib']:.2f} ({s['peak_gib'] - s['loaded_gib']:.2f}) | "
            f"{cell(r, 'update', 'cpu_s')} | {cell(r, 'update', 'wall_s')} | "
            f"{u['peak_gib']:.2f} ({u['peak_gib'] - u['loaded_gib']:.2f}) | "
            f"{cell(r, 'rl', 'update_s')} / {median(q['steps'], 'generation_s', args.skip):.2f} | "
            f"{q['peak_gib']:.2f} |"
        )
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": cpu_model(),
            "torch": torch.__version__,
            "uptime_before": before,
            "uptime_after": after,
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "worker")},
        "rows": rows,
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print("\n".join(table))


if __name__ == "__main__":
    main()
