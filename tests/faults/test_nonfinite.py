"""Non-finite losses: a NaN step is skipped (no update) and logged, `max_nonfinite_steps` in a row stop
the stage with one clear error and the last checkpoint intact, and metrics files stay strict JSON."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
import yaml
from fault_helpers import fault_config
from safetensors.torch import load_file, save_file

from avatar_core.cli import main
from avatar_core.replay import TIERS
from avatar_core.replay.buffer import HierarchicalReplayBuffer


def _strict(path: Path) -> object:
    """json.loads that refuses NaN and Infinity, as strict JSON readers do."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{path} holds {token}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _fresh_sft(project: Path, **changes: object):
    cfg = fault_config(project, **changes)
    for folder in (cfg.paths.sft_dir, Path(cfg.paths.runs_dir) / "sft", Path(cfg.paths.metrics_dir) / "sft"):
        shutil.rmtree(folder, ignore_errors=True)
    return cfg


def _write_params(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return path


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_a_nan_step_changes_no_weight_and_is_logged(project: Path, tmp_path: Path, monkeypatch) -> None:
    from avatar_core.recipes.sft import run_sft

    one_step = tmp_path / "one"
    shutil.copytree(project, one_step, symlinks=True)
    run_sft(_fresh_sft(one_step, **{"sft.max_steps": 1}), progress=False)

    monkeypatch.setenv("AVATAR_FAULTS", "sft.loss#2=nan")
    cfg = _fresh_sft(project, **{"sft.max_steps": 2})
    result = run_sft(cfg, progress=False)
    # step 1 is the same in both runs (same data order, same warm-up lr); step 2 was skipped
    before, after = _weights(one_step / "checkpoints/sft/model"), _weights(Path(cfg.paths.sft_dir) / "model")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    log = [json.loads(line) for line in (Path(cfg.paths.runs_dir) / "sft/log.jsonl").read_text().splitlines()]
    assert [r.get("skipped", False) for r in log] == [False, True]
    assert log[1]["loss"] is None  # NaN is written as null, the file stays JSON
    metrics = _strict(Path(cfg.paths.metrics_dir) / "sft/metrics.json")
    assert metrics["skipped_steps"] == 1 and math.isfinite(metrics["final_loss"])
    assert result["skipped_steps"] == 1


def test_nan_steps_in_a_row_stop_with_one_error_and_the_checkpoint_intact(
    project: Path, capsys, monkeypatch
) -> None:
    cfg = _fresh_sft(project, **{"sft.max_steps": 6, "sft.save_every": 2})
    params = _write_params(cfg, project / "params.yaml")
    monkeypatch.setenv("AVATAR_FAULTS", "sft.loss#3-=nan")  # every step from the third on diverges
    assert main(["sft", "--params", str(params), "--no-progress"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: sft.optim.max_nonfinite_steps: 3 steps in a row (3-5) had a non-finite loss or gradient "
        "norm and were skipped; the stage stopped without applying them. The last checkpoint "
        f"({cfg.paths.runs_dir}/sft/state, step 2) is intact. Lower the learning rate, or check the "
        "starting checkpoint and the data, then run again."
    ]
    assert "Traceback" not in err
    state = Path(cfg.paths.runs_dir) / "sft/state"
    trainer = json.loads((state / "trainer.json").read_text())
    assert ["step", 2] in trainer["__dict__"]  # step 4 fell inside the streak: no checkpoint there
    assert all(torch.isfinite(t).all() for t in _weights(state).values())
    assert not (Path(cfg.paths.sft_dir) / "done.json").exists()

    monkeypatch.delenv("AVATAR_FAULTS")
    assert main(["sft", "--params", str(params), "--no-progress"]) == 0  # resumes from step 2
    done = _strict(Path(cfg.paths.sft_dir) / "done.json")
    assert done["steps"] == 6 and done["skipped_steps"] == 0


def test_a_checkpoint_with_an_infinite_weight_stops_before_any_update(project: Path, capsys) -> None:
    cfg = _fresh_sft(project, **{"sft.max_steps": 6, "sft.save_every": 100})
    base = Path(cfg.paths.model_dir) / "model.safetensors"
    weights = load_file(str(base))
    norm = next(k for k in sorted(weights) if "norm" in k and weights[k].is_floating_point())
    weights[norm][0] = float("inf")
    save_file(weights, str(base), metadata={"format": "pt"})
    params = _write_params(cfg, project / "params.yaml")
    assert main(["sft", "--params", str(params), "--no-progress"]) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: sft.optim.max_nonfinite_steps: 3 steps in a row (1-3)")
    assert f"No checkpoint was written yet; a rerun starts again from {cfg.paths.model_dir}." in line
    assert not (Path(cfg.paths.runs_dir) / "sft/state").exists()


def test_rl_nan_step_is_skipped_and_its_rollouts_stay_out_of_the_buffer(project: Path, monkeypatch) -> None:
    from avatar_core.recipes.rl import run_rl

    monkeypatch.setenv("AVATAR_FAULTS", "rl.loss#2=nan")
    cfg = fault_config(project)
    result = run_rl(cfg, "s1", progress=False)
    assert result["steps"] == 4 and result["skipped_steps"] == 1
    log = [json.loads(line) for line in (Path(cfg.paths.runs_dir) / "s1/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r.get("skipped")] == [2]
    buffer = HierarchicalReplayBuffer.load(Path(cfg.paths.runs_dir) / "s1/state/buffer")
    versions = {t.policy_version for tier in TIERS for t in buffer.entries(tier)}
    assert 2 not in versions and versions  # steps 1, 3 and 4 added theirs
    metrics = _strict(Path(cfg.paths.metrics_dir) / "s1/metrics.json")
    assert metrics["skipped_steps"] == 1
