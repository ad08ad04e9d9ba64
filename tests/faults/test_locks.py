"""One writer per stage: a second `avatar` run of a stage that is still running refuses with the holder's
PID, and the lock of a process that died (kill -9, as when `dvc repro` and its child are killed) is
taken over by the next run, which resumes the stage."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fault_helpers import fault_config, leftovers, stage_snapshot, step_log

from avatar_core.cli import main
from avatar_core.pipeline.locks import LockError, folder_lock, lock_file, stage_folders


def test_lock_refuses_a_second_holder_then_is_taken_over_after_the_holder_dies(
    tmp_path: Path, caplog
) -> None:
    folder = tmp_path / "runs" / "s1"
    ready = tmp_path / "ready"
    child = os.fork()
    if child == 0:  # the first writer: takes the lock, says so, then waits to be killed
        try:
            with folder_lock(folder, "avatar rl --stage s1"):
                ready.write_text("1")
                time.sleep(120)
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "the first writer never took the lock"
            time.sleep(0.02)
        with pytest.raises(LockError) as refused, folder_lock(folder, "avatar rl --stage s1"):
            pass
        message = str(refused.value)
        assert message.startswith(f"{folder}: another writer holds this stage: process {child} ")
        assert "`avatar rl --stage s1`" in message and f"kill {child}" in message
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert lock_file(folder).is_file()  # left behind by the dead process
    with caplog.at_level(logging.WARNING), folder_lock(folder, "avatar rl --stage s1") as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"taking over the lock left by process {child}" in caplog.text
    assert not lock_file(folder).exists()  # released and removed


def test_every_command_locks_what_it_writes() -> None:
    cfg = fault_config(Path("/p"))
    assert stage_folders(cfg, "rl", "s2") == [
        Path("/p/runs/s2"),
        Path("/p/checkpoints/rl/s2"),
        Path("/p/results/metrics/s2"),
    ]
    assert stage_folders(cfg, "sft") == [
        Path("/p/runs/sft"),
        Path("/p/checkpoints/sft"),
        Path("/p/results/metrics/sft"),
    ]
    assert stage_folders(cfg, "ingest") == [Path("/p/data/synthetic"), Path("/p/checkpoints/base")]
    assert stage_folders(cfg, "evaluate") == [Path("/p/results/eval")]


def _holder(lock: Path) -> int | None:
    try:
        return json.loads(lock.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
def test_second_writer_is_refused_and_a_killed_writers_stage_resumes(
    project: Path, rl_reference, capsys
) -> None:
    cfg = fault_config(project)
    params = project / "params.yaml"
    params.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    command = [
        sys.executable,
        "-m",
        "avatar_core.cli",
        "rl",
        "--stage",
        "s1",
        "--params",
        str(params),
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = Path(cfg.paths.runs_dir) / "s1" / "log.jsonl"
    lock = lock_file(Path(cfg.paths.runs_dir) / "s1")
    try:
        deadline = time.monotonic() + 300
        while _holder(lock) != first.pid:  # the first writer holds the stage
            assert first.poll() is None, "the first writer ended before the test could race it"
            assert time.monotonic() < deadline, "the first writer never took the lock"
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # a hung writer: alive, holding the lock
        assert main(["rl", "--stage", "s1", "--params", str(params), "--no-progress"]) == 1
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in err
        assert lines[0].startswith(
            f"error: {cfg.paths.runs_dir}/s1: another writer holds this stage: process {first.pid} "
            "(`avatar rl --stage s1`"
        )
    finally:
        first.kill()  # kill -9: its lock files stay behind
        first.wait()
    assert lock.exists()
    assert main(["rl", "--stage", "s1", "--params", str(params), "--no-progress"]) == 0
    assert stage_snapshot(cfg, "s1") == rl_reference.snapshot
    assert [r["step"] for r in step_log(log)] == [1, 2, 3, 4]
    assert leftovers(cfg) == []
