"""The disk fills up while a checkpoint is written: one clear error, the previous checkpoint intact,
and once there is room again a rerun ends exactly like a run that never failed.

Two ways to fill it: a writer that fails with ENOSPC (the `checkpoint.write` fault point, any
machine), and a real tmpfs too small for a second checkpoint mounted as the run folder (the
kernel refuses the write in the middle of a file; needs root, skipped elsewhere).
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fault_helpers import fault_config, leftovers, stage_snapshot

from avatar_core.cli import main

pytestmark = pytest.mark.slow


def _params(cfg, project: Path) -> str:
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return str(path)


def _state_step(run_dir: Path) -> int:
    tree = json.loads((run_dir / "state" / "trainer.json").read_text())
    counters = dict(tree["__dict__"])["counters"]
    return dict(counters["__dict__"])["step"]


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_failing_writer_during_a_checkpoint(project: Path, rl_reference, capsys, monkeypatch) -> None:
    cfg = fault_config(project)
    params = _params(cfg, project)
    run_dir = Path(cfg.paths.runs_dir) / "s1"
    # save_state runs twice per checkpoint (weights, trainer state): arrival 3 is the step-4 weights
    monkeypatch.setenv("AVATAR_FAULTS", "checkpoint.write#3=enospc")
    assert main(["rl", "--stage", "s1", "--params", params, "--no-progress"]) == 1
    assert _error_lines(capsys.readouterr().err) == [
        f"error: {run_dir}/state.tmp/model.safetensors: No space left on device"
    ]
    assert _state_step(run_dir) == 2  # the previous checkpoint, untouched
    monkeypatch.delenv("AVATAR_FAULTS")
    assert main(["rl", "--stage", "s1", "--params", params, "--no-progress"]) == 0
    assert stage_snapshot(cfg, "s1") == rl_reference.snapshot
    assert leftovers(cfg) == []


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _mount_tmpfs(where: Path, size: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, check=False
    )
    return done.returncode == 0


def test_real_full_file_system_during_a_checkpoint(
    project: Path, rl_reference, tmp_path: Path, capsys
) -> None:
    small = tmp_path / "runs"
    # Room for the step-2 checkpoint (a little smaller than the step-4 one measured in the
    # reference) and the log, not for the step-4 checkpoint written beside it before the swap.
    size = rl_reference.state_bytes * 3 // 2
    if not _mount_tmpfs(small, size):
        pytest.skip("cannot mount a tmpfs here (needs root); the failing-writer test covers ENOSPC")
    try:
        cfg = fault_config(project, **{"paths.runs_dir": str(small)})
        params = _params(cfg, project)
        assert main(["rl", "--stage", "s1", "--params", params, "--no-progress"]) == 1
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and lines[0].endswith(": No space left on device"), lines
        assert lines[0].startswith(f"error: {small}/s1/state.tmp/"), lines
        assert _state_step(small / "s1") == 2  # the previous checkpoint, untouched
        subprocess.run(["mount", "-o", f"remount,size={4 * size}", str(small)], check=True)
        assert main(["rl", "--stage", "s1", "--params", params, "--no-progress"]) == 0
        assert stage_snapshot(cfg, "s1") == rl_reference.snapshot
    finally:
        gc.collect()  # tensors loaded from the tmpfs may still map its files
        if subprocess.run(["umount", str(small)], check=False).returncode:
            subprocess.run(["umount", "-l", str(small)], check=False)  # detach now, free when unused
