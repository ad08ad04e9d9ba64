"""Helpers of the fault-injection suite: a small project config, a run killed at a named fault point
in a forked child, and a snapshot of everything a stage leaves on disk for exact comparison."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

from avatar_core.config import AvatarConfig, config_from_dict, load_config

REPO = Path(__file__).resolve().parents[2]
RL_STEPS, SFT_STEPS, SAVE_EVERY = 4, 4, 2


def fault_config(root: Path, **changes: object) -> AvatarConfig:
    """params.yaml with every path under `root`, sized for seconds per stage: 4 RL steps and
    4 SFT steps, a checkpoint every 2. `changes` are dotted overrides (`rl.s1.steps=6`)."""
    data = load_config(REPO / "params.yaml").model_dump(mode="json")
    data["paths"] = {k: str(root / Path(v)) for k, v in data["paths"].items()}
    data["num_threads"] = 1
    data["data"]["num_workers"] = 0
    data["data"]["synthetic"].update(n_train=8, n_val=0, n_test=4, train_only_tasks=[])
    data["sft"]["warmup"] = {"tasks": [], "steps": 0}  # a warm-up's kills: WARMUP_KILL_POINTS
    data["sft"].update(max_steps=SFT_STEPS, batch_size=4, save_every=SAVE_EVERY, eval_every=1000)
    for stage in ("s1", "s2", "s3"):
        rl = data["rl"][stage]
        rl.update(steps=RL_STEPS, prompts_per_step=2, group_size=2, save_every=SAVE_EVERY)
        rl["generation"]["max_new_tokens"] = 8
        rl["buffer"].update(min_size=0, replay_per_step=2)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return config_from_dict(data)


def killed_run(target: Callable[[], object], faults: str, timeout: float = 300) -> int:
    """Run `target` in a forked child with AVATAR_FAULTS=`faults`; returns its exit code
    (-9 when a fault point killed it). Forking keeps the parent's imports: no start-up cost."""

    def child() -> None:
        os.environ["AVATAR_FAULTS"] = faults
        target()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError(f"the run armed with {faults!r} did not end within {timeout} s")
    return process.exitcode


def tree_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def step_log(path: Path) -> list[dict]:
    """The step log without its wall-clock timings (the only fields that differ between runs)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in records]


def stage_snapshot(cfg: AvatarConfig, stage: str) -> dict[str, object]:
    """What a finished stage leaves: run state, output folder, metrics files, step log."""
    p = cfg.paths
    out = Path(p.sft_dir) if stage == "sft" else Path(p.rl_dir) / stage
    run_dir, metrics = Path(p.runs_dir) / stage, Path(p.metrics_dir) / stage
    return {
        "state": tree_digests(run_dir / "state"),
        "output": tree_digests(out),
        "metrics": json.loads((metrics / "metrics.json").read_text()),
        "curve": (metrics / "curve.csv").read_text(),
        "log": step_log(run_dir / "log.jsonl"),
    }


def leftovers(cfg: AvatarConfig) -> list[str]:
    """Temporary or set-aside folders and lock files still on disk (a finished run leaves none)."""
    roots = [Path(v) for v in cfg.paths.model_dump().values()]
    found = set()
    for root in roots:
        for parent in {root, root.parent}:
            if parent.is_dir():
                found |= {str(p) for p in parent.rglob("*") if p.name.endswith((".tmp", ".old", ".lock"))}
    return sorted(found)
