"""Start a training command as `distributed.num_processes` processes through `accelerate launch`.

`avatar sft` and `avatar rl` call `relaunch` when params.yaml asks for more than one process and
they are not already one of the launched processes: the command reruns itself under
`accelerate launch --config_file <replicated|fsdp2>.yaml --num_processes N -m avatar_core.cli ...`
with the same arguments. Because the stage's own command does this, `dvc repro`, the Prefect
flow (which runs DVC stages) and a person typing `avatar rl --stage s1` all start the same
processes from the one params key. Launching by hand with `accelerate launch` works too: the
recipes then check that the launch agrees with params.yaml (recipes/distributed.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from avatar_core.config import AvatarConfig

CONFIG_DIR = Path(__file__).resolve().parent / "accelerate"
# Set by torchrun / accelerate in every launched process.
_LAUNCHED_MARKERS = ("LOCAL_RANK", "ACCELERATE_PROCESS_INDEX")


def launched() -> bool:
    """True inside a process that `accelerate launch` (torchrun) started."""
    return any(name in os.environ for name in _LAUNCHED_MARKERS)


def accelerate_config(sharding: str) -> Path:
    path = CONFIG_DIR / f"{sharding}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no accelerate config for sharding {sharding!r} at {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(cfg: AvatarConfig, cli_args: list[str]) -> list[str]:
    """The `accelerate launch` command line that runs `avatar <cli_args>` on every process."""
    d = cfg.distributed
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(accelerate_config(d.sharding)),
        "--num_processes",
        str(d.num_processes),
        "--main_process_port",
        str(d.main_process_port or free_port()),
        "-m",
        "avatar_core.cli",
        *cli_args,
    ]


def relaunch(cfg: AvatarConfig, cli_args: list[str]) -> int:
    """Run the command on `distributed.num_processes` processes; returns their exit status."""
    env = dict(os.environ)
    if cfg.num_threads > 0:  # accelerate would otherwise pin OMP to 1 thread per process silently
        env.setdefault("OMP_NUM_THREADS", str(cfg.num_threads))
    command = launch_command(cfg, cli_args)
    print(
        f"avatar: starting {cfg.distributed.num_processes} processes "
        f"({cfg.distributed.sharding}): {' '.join(command)}",
        file=sys.stderr,
        flush=True,
    )
    return subprocess.run(command, env=env, check=False).returncode
