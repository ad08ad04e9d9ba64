"""Real-model presets merge into params.yaml with the authors' values, validated before writing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from avatar_core.cli import main
from avatar_core.config import ConfigError, load_config
from avatar_core.presets import apply_preset, merge, preset_names

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    return path


def test_merge_replaces_leaves_and_keeps_the_rest() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    assert merge(base, {"a": {"y": [3]}, "c": 4}) == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}  # the input is not modified


@pytest.mark.parametrize("name", ["qwen2_5_omni_7b", "qwen2_5_omni_3b", "qwen3_omni_30b_a3b"])
def test_preset_carries_the_authors_values(params: Path, name: str) -> None:
    assert main(["preset", name, "--params", str(params)]) == 0
    cfg = load_config(params)
    assert cfg.model.dtype == "bfloat16" and cfg.model.gradient_checkpointing
    assert (cfg.model.lora.enabled, cfg.model.lora.r, cfg.model.lora.alpha) == (True, 8, 32)
    assert cfg.model.lora.target_modules == "all-linear"
    assert (cfg.data.media.n_frames, cfg.data.media.max_pixels) == (16, 224 * 224)
    for stage in ("s1", "s2", "s3"):
        s = cfg.rl.stage(stage)
        assert (s.group_size, s.generation.max_new_tokens, s.optim.lr) == (8, 2048, 5e-7)
        assert (s.objective.beta, s.objective.eps_low, s.tas.lam, s.objective.alpha) == (0.1, 0.2, 0.3, 1.0)
        assert (s.buffer.capacity, s.buffer.min_size, s.difficulty.window) == (10_000, 10, 20)
        assert (s.buffer.tiers.easy, s.buffer.tiers.medium, s.buffer.tiers.hard) == (0.25, 0.35, 0.40)
        assert s.hints.zero_streak == 3 and not s.hints.use_kl_trigger
    original = load_config(REPO / "params.yaml")
    assert cfg.rl.s2.tasks == original.rl.s2.tasks and cfg.paths == original.paths  # untouched keys stay
    text = params.read_text()
    assert text.startswith("# params.yaml: every value") and f"# Preset {name} merged in" in text
    assert "&id" not in text and "*id" not in text  # no YAML aliases in the written file


def test_presets_name_their_models() -> None:
    names = {
        n: yaml.safe_load((REPO / "avatar_core" / "presets" / f"{n}.yaml").read_text())
        for n in preset_names()
    }
    assert names["qwen2_5_omni_7b"]["model"]["name_or_path"] == "Qwen/Qwen2.5-Omni-7B"
    assert names["qwen2_5_omni_3b"]["model"]["name_or_path"] == "Qwen/Qwen2.5-Omni-3B"
    assert names["qwen3_omni_30b_a3b"]["model"]["kind"] == "qwen3_omni_moe"
    assert names["qwen3_omni_30b_a3b"]["distributed"] == {
        "num_processes": 8,
        "sharding": "fsdp2",
        "gather_for_rollout": False,
    }


def test_unknown_or_invalid_preset_leaves_params_untouched(params: Path, tmp_path: Path, monkeypatch) -> None:
    before = params.read_text()
    with pytest.raises(ConfigError, match="unknown preset 'llama'; presets: qwen2_5_omni_3b"):
        apply_preset("llama", params)
    bad = tmp_path / "presets"
    bad.mkdir()
    (bad / "broken.yaml").write_text("model:\n  lora:\n    r: 0\n")
    monkeypatch.setattr("avatar_core.presets.PRESET_DIR", bad)
    with pytest.raises(ConfigError, match=r"model\.lora\.r: Input should be greater than 0"):
        apply_preset("broken", params)
    assert params.read_text() == before


def test_locate_first_preset_is_the_documented_recipe(params: Path) -> None:
    before = load_config(params)
    assert main(["preset", "tiny_locate_first", "--params", str(params)]) == 0
    cfg = load_config(params)
    assert cfg.model.name_or_path == "tiny" and cfg.data.synthetic.tasks == before.data.synthetic.tasks
    assert cfg.data.synthetic.train_only_tasks == ["locate"] and cfg.data.synthetic.glow == "patterned"
    assert cfg.data.synthetic.split_tasks("test") == before.data.synthetic.tasks  # the same scored families
    assert (cfg.sft.warmup.tasks, cfg.sft.warmup.steps, cfg.sft.max_steps) == (["locate"], 600, 1500)
    assert cfg.sft.optim.vision_lr_scale == 0.0
    assert all(cfg.rl.stage(s).optim.vision_lr_scale == 0.0 for s in ("s1", "s2", "s3"))
