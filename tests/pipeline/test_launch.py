"""`avatar sft` / `avatar rl` start `distributed.num_processes` processes through accelerate launch.

The command line is built from params.yaml alone (so `dvc repro` and the Prefect flow, which run
the stage's own command, start the same processes); inside a launched process it does not
launch again. tests/recipes/test_sharded.py runs the real two-process launch end to end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from avatar_core.config import load_config
from avatar_core.pipeline.launch import accelerate_config, launch_command, launched

REPO = Path(__file__).resolve().parents[2]


def test_command_follows_the_params(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["distributed"].update(num_processes=4, sharding="fsdp2", main_process_port=29511)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    cfg = load_config(params)
    command = launch_command(cfg, ["rl", "--stage", "s2", "--params", str(params)])
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert command[command.index("--config_file") + 1] == str(accelerate_config("fsdp2"))
    assert command[command.index("--num_processes") + 1] == "4"
    assert command[command.index("--main_process_port") + 1] == "29511"
    assert command[-7:] == ["-m", "avatar_core.cli", "rl", "--stage", "s2", "--params", str(params)]


def test_accelerate_configs_select_their_engine() -> None:
    fsdp = yaml.safe_load(accelerate_config("fsdp2").read_text())
    assert fsdp["distributed_type"] == "FSDP" and fsdp["fsdp_config"]["fsdp_version"] == 2
    replicated = yaml.safe_load(accelerate_config("replicated").read_text())
    assert replicated["distributed_type"] == "MULTI_GPU"


def test_a_launched_process_does_not_launch_again(monkeypatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("ACCELERATE_PROCESS_INDEX", raising=False)
    assert not launched()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launched()
