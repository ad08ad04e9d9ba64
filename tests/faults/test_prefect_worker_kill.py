"""The Prefect worker dies in the middle of a full-curriculum run (SIGKILL to the worker and every process
under it: flow run, `dvc repro`, `avatar`); a new worker's run resumes through DVC: the stages that
had finished are up to date and skipped, the interrupted stage resumes from its last checkpoint.

Deterministic: the first worker's environment arms `rl.step_done#2=stop`, so the `avatar rl --stage
s1` process freezes right after step 2 was applied and logged (its checkpoint holds step 1); the test
waits for that state, then kills the whole process tree at once, as a machine or container loss would.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import VENV_BIN, copy_repo, env, set_param, sh

pytestmark = pytest.mark.e2e
STEPS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(ready, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (httpx.HTTPError, OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not ready after {timeout_s} s")


def _start(cmd: list[str], root: Path, log: Path, extra: dict[str, str]) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(cmd, cwd=root, env={**env(), **extra}, stdout=out, stderr=subprocess.STDOUT)


def _kill_tree(proc: subprocess.Popen) -> list[int]:
    """SIGKILL a process and all its descendants at once; returns their PIDs."""
    parent = psutil.Process(proc.pid)
    tree = [parent, *parent.children(recursive=True)]
    for p in tree:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=30)
    return [p.pid for p in tree]


def _stopped_avatar(worker: subprocess.Popen) -> psutil.Process | None:
    for p in psutil.Process(worker.pid).children(recursive=True):
        try:
            if p.status() == psutil.STATUS_STOPPED and "rl" in p.cmdline() and "s1" in p.cmdline():
                return p
        except psutil.NoSuchProcess:
            continue
    return None


async def _run_to_end(name: str, api: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        run = await run_deployment(name, timeout=1800, poll_interval=1)
        deadline = time.monotonic() + 60
        async with get_client() as client:
            while True:  # the worker ships logs in batches: wait for the last stage line
                logs = await client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
                )
                messages = [entry.message for entry in logs]
                if sum("stage " in m for m in messages) >= 7 or time.monotonic() > deadline:
                    return run, messages
                await asyncio.sleep(1)


def test_worker_killed_mid_run_then_a_new_run_resumes_through_dvc(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    set_param(root, "rl.s1.steps", STEPS)
    prefect = str(VENV_BIN / "prefect")
    api = f"http://127.0.0.1:{_free_port()}/api"
    settings = {
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    os.environ.update(settings)
    procs: list[subprocess.Popen] = []
    try:
        port = api.split(":")[-1].split("/")[0]
        server_log = tmp_path / "server.log"
        procs.append(
            _start(
                [prefect, "server", "start", "--host", "127.0.0.1", "--port", port],
                root,
                server_log,
                settings,
            )
        )
        _wait(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 300, "prefect server")
        worker_cmd = [prefect, "worker", "start", "--pool", "local", "--type", "process"]
        first_log = tmp_path / "worker1.log"
        worker = _start(worker_cmd, root, first_log, {**settings, "AVATAR_FAULTS": "rl.step_done#2=stop"})
        procs.append(worker)
        _wait(lambda: httpx.get(f"{api}/work_pools/local", timeout=2).status_code == 200, 300, "worker")
        sh([prefect, "--no-prompt", "deploy", "--all"], root)
        sh([prefect, "deployment", "run", "avatar/full-curriculum"], root)

        _wait(lambda: _stopped_avatar(worker) is not None, 900, "avatar rl --stage s1 frozen after step 2")
        log = root / "runs" / "s1" / "log.jsonl"
        assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]
        killed = _kill_tree(worker)
        assert len(killed) >= 3  # worker, flow run, dvc and avatar (DVC may add a shell)
        assert not (root / "checkpoints" / "rl" / "s1" / "done.json").exists()

        second_log = tmp_path / "worker2.log"
        procs.append(_start(worker_cmd, root, second_log, settings))
        run, messages = asyncio.run(_run_to_end("avatar/full-curriculum", api))
        text = "\n".join(messages)
        assert run.state.is_completed(), f"{run.state}: {messages[-20:]}\n{second_log.read_text()[-3000:]}"
        for stage in ("ingest", "hints", "sft"):
            assert f"stage {stage} is up to date" in text, text
        for stage in ("rl@s1", "rl@s2", "rl@s3", "evaluate"):
            assert f"stage {stage} ran {stage}" in text, text
        assert "resuming stage s1 from step 1" in second_log.read_text()
        assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == list(
            range(1, STEPS + 1)
        )
        done = json.loads((root / "checkpoints" / "rl" / "s1" / "done.json").read_text())
        assert done["steps"] == STEPS
        status = sh(
            [str(VENV_BIN / "dvc"), "status", "--with-deps", "evaluate"], root
        ).stdout  # the curriculum
        assert "Data and pipelines are up to date" in status, status
        stage_locks = [p for p in root.rglob("*.lock") if ".dvc" not in p.parts and p.name != "dvc.lock"]
        assert stage_locks == []  # the dead writer's locks were taken over, then released
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                _kill_tree(proc)
        for key in settings:
            os.environ.pop(key, None)
