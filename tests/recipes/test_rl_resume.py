"""Kill -9 an RL stage mid-run, start it again, and compare with a run that was never interrupted.

Every random stream (torch, numpy, the prompt sampler, the buffer's sampler) and all training
state is checkpointed, so the resumed run must end bit-identical to the uninterrupted one: same
weights, same replay buffer contents, same counters. A finished stage started again does nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from recipe_helpers import rl_cli_args, tiny_config
from safetensors.torch import load_file

STEPS, SAVE_EVERY = 6, 2


def _write_params(project: Path) -> Path:
    cfg = tiny_config(project)
    data = cfg.model_dump(mode="json")
    data["num_threads"] = 1
    data["rl"]["s1"].update(steps=STEPS, save_every=SAVE_EVERY)
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _command(params: Path) -> list[str]:
    return [sys.executable, *rl_cli_args(params)]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _logged_steps(project: Path) -> int:
    log = project / "runs" / "s1" / "log.jsonl"
    if not log.is_file():
        return 0
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1])["step"] if lines else 0


def _final_state(project: Path) -> tuple[dict, dict, dict]:
    state = project / "runs" / "s1" / "state"
    weights = load_file(str(state / "model.safetensors"))
    buffer = load_file(str(state / "buffer" / "replay_buffer.safetensors"))
    meta = json.loads((state / "buffer" / "replay_buffer.json").read_text())
    done = json.loads((project / "checkpoints" / "rl" / "s1" / "done.json").read_text())
    return weights, buffer, {"meta": meta, "steps": done["steps"], "completions": done["completions"]}


@pytest.mark.slow
def test_sigkill_and_resume_matches_uninterrupted_run(tiny_project: Path, tmp_path: Path):
    import shutil

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    shutil.copytree(tiny_project, straight)
    shutil.copytree(tiny_project, killed)

    params = _write_params(straight)
    subprocess.run(_command(params), cwd=straight, env=_env(), check=True, capture_output=True, timeout=600)

    params = _write_params(killed)
    proc = subprocess.Popen(
        _command(params), cwd=killed, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while _logged_steps(killed) < SAVE_EVERY + 1:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "checkpoints" / "rl" / "s1" / "done.json").exists()
    checkpointed = json.loads((killed / "runs" / "s1" / "state" / "trainer.json").read_text())
    assert checkpointed  # a checkpoint exists to resume from

    resumed = subprocess.run(
        _command(params), cwd=killed, env=_env(), check=True, capture_output=True, text=True, timeout=600
    )
    assert "resuming stage s1 from step" in resumed.stderr

    w1, b1, c1 = _final_state(straight)
    w2, b2, c2 = _final_state(killed)
    assert c1 == c2
    assert c2["steps"] == STEPS
    assert b1.keys() == b2.keys()
    for key in b1:
        assert torch.equal(b1[key], b2[key]), key
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key
    steps = [
        json.loads(line)["step"] for line in (killed / "runs" / "s1" / "log.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, STEPS + 1))  # no step lost, none logged twice

    again = subprocess.run(
        _command(params), cwd=killed, env=_env(), check=True, capture_output=True, text=True, timeout=600
    )
    assert "up to date" in again.stderr
