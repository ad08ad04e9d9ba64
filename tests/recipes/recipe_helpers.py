"""Config of the tiny project used by the recipe tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from avatar_core.config import AvatarConfig, config_from_dict, load_config

REPO = Path(__file__).resolve().parents[2]


def tiny_config(root: Path, **stage_overrides) -> AvatarConfig:
    """params.yaml with every path under `root` and sizes small enough for a unit test."""
    base = load_config(REPO / "params.yaml").model_dump(mode="json")
    base["paths"] = {k: str(root / Path(v)) for k, v in base["paths"].items()}
    base["data"]["synthetic"].update(n_train=16, n_val=4, n_test=8, train_only_tasks=[])
    # the shared project keeps the four scored families and one SFT phase; the warm-up phase and the
    # train-only families have tests of their own (test_sft_warmup.py, tests/faults, tests/data)
    base["sft"]["warmup"] = {"tasks": [], "steps": 0}
    # 150 steps teach the format on 16 clips (about 30 s), so RL starts from varied rewards.
    base["sft"].update(max_steps=150, batch_size=4, save_every=1000)
    base["sft"]["optim"].update(lr=3e-3)
    base["evaluate"].update(bootstrap_samples=50, controls=[])
    for stage in ("s1", "s2", "s3"):
        rl = base["rl"][stage]
        rl.update(steps=2, prompts_per_step=2, group_size=4, save_every=1)
        rl["generation"]["max_new_tokens"] = 12
        rl["buffer"].update(min_size=2, replay_per_step=4)
        for key, value in stage_overrides.items():
            section, field = key.split(".")
            rl[section][field] = value
    return config_from_dict(base)


def rl_cli_args(params: Path, stage: str = "s1") -> list[str]:
    """`python -m` arguments that run one RL stage through the CLI, without progress bars."""
    return ["-m", "avatar_core.cli", "rl", "--stage", stage, "--params", str(params), "--no-progress"]


def run_script(name: str, cfg: AvatarConfig, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run scripts/<name> on `cfg` (written to tmp_path/params.yaml) from the repository root."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    command = [sys.executable, str(REPO / "scripts" / name), "--params", str(params), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
