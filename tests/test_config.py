"""The typed configuration: defaults, round trips, overrides, and one clear error per bad input."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from avatar_core import config as config_module
from avatar_core.config import (
    LOSS_TYPES,
    OBJECTIVE_NAMES,
    REWARD_NAMES,
    AvatarConfig,
    ConfigError,
    RLStageConfig,
    apply_override,
    config_from_dict,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]


def write_params(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def nested(dotted: str, value: Any) -> dict[str, Any]:
    """{"a": {"b": value}} from "a.b"."""
    data: dict[str, Any] = {}
    apply_override(data, f"{dotted}={yaml.safe_dump(value, default_flow_style=True).strip()}")
    return data


def config_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, "params.yaml")
    return str(caught.value)


def problem_lines(message: str) -> list[str]:
    return message.splitlines()[1:]


def test_defaults_validate_and_follow_the_paper() -> None:
    cfg = AvatarConfig()
    stage = cfg.rl.s1
    assert stage.tas.lam == 0.3 and stage.objective.alpha == 1.0 and stage.objective.beta == 0.1
    assert stage.objective.eps_low == stage.objective.eps_high == 0.2 and stage.group_size == 8
    assert stage.difficulty.window == 20 and stage.buffer.capacity == 10_000
    assert (stage.buffer.tiers.easy, stage.buffer.tiers.medium, stage.buffer.tiers.hard) == (0.25, 0.35, 0.40)
    assert stage.rewards == {"format": 0.5, "accuracy": 0.5}
    assert config_from_dict({}) == cfg


def test_full_params_dict_round_trips_through_yaml(tmp_path: Path) -> None:
    cfg = AvatarConfig()
    cfg.rl.s2.rewards = {"format": 0.4, "accuracy": 0.4, "self": 0.2}
    cfg.rl.s3.objective.loss_type = "dr_grpo"
    cfg.evaluate.benchmarks = [
        config_module.BenchmarkSpec(name="omnibench", root="/data/omnibench", limit=10)
    ]
    data = cfg.model_dump(mode="json")
    loaded = load_config(write_params(tmp_path, data))
    assert loaded == cfg
    assert loaded.model_dump(mode="json") == data


def test_repository_params_yaml_validates() -> None:
    cfg = load_config(REPO / "params.yaml")
    for stage in ("s1", "s2", "s3"):
        assert set(cfg.rl.stage(stage).rewards) <= set(REWARD_NAMES)


def test_overrides_apply_before_validation(tmp_path: Path) -> None:
    path = write_params(tmp_path, {"rl": {"s2": {"tas": {"lam": 0.3}}}})
    overrides = [
        "rl.s2.tas.lam=0.5",
        "rl.s1.rewards={format: 1.0}",
        "rl.s1.hints.streak_reward=total",
        "seed=7",
    ]
    cfg = load_config(path, overrides=overrides)
    assert cfg.rl.s2.tas.lam == 0.5
    assert cfg.rl.s1.rewards == {"format": 1.0}
    assert cfg.seed == 7
    assert load_config(path).rl.s2.tas.lam == 0.3  # the file itself is untouched


def test_override_errors_name_the_assignment(tmp_path: Path) -> None:
    path = write_params(tmp_path, {})
    with pytest.raises(ConfigError, match=r"override 'rl.s2.tas.lam' must look like key.path=value"):
        load_config(path, overrides=["rl.s2.tas.lam"])
    with pytest.raises(ConfigError, match=r"override 'seed.x=1': 'seed' is not a section"):
        load_config(write_params(tmp_path, {"seed": 3}), overrides=["seed.x=1"])
    with pytest.raises(ConfigError, match=r"rl.s2.tas.lamda: unknown key"):
        load_config(path, overrides=["rl.s2.tas.lamda=0.5"])


def test_missing_file_and_invalid_yaml_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"params file not found: {missing}"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rl:\n  s1: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{broken} is not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=rf"{listing}: the top level must be a mapping"):
        load_config(listing)


def test_validation_error_names_the_file(tmp_path: Path) -> None:
    path = write_params(tmp_path, {"seed": "abc"})
    with pytest.raises(
        ConfigError, match=rf"invalid configuration in {path}:\n  seed: .*integer.*\(got 'abc'\)"
    ):
        load_config(path)


BAD_INPUTS = [
    ({"foo": 1}, "foo", "unknown key"),
    (nested("rl.s2.buffer.foo", 1), "rl.s2.buffer.foo", "unknown key"),
    (
        nested("rl.s2.buffer.tiers", {"easy": 0.5, "medium": 0.35, "hard": 0.4}),
        "rl.s2.buffer.tiers",
        "tier ratios must sum to 1, got easy+medium+hard = 1.25",
    ),
    (nested("rl.s2.buffer.capacity", -5), "rl.s2.buffer.capacity", "greater than 0 (got -5)"),
    (nested("rl.s1.objective.eps_low", 1.5), "rl.s1.objective.eps_low", "less than 1 (got 1.5)"),
    (nested("rl.s1.objective.eps_high", 0.0), "rl.s1.objective.eps_high", "greater than 0 (got 0.0)"),
    (
        nested("rl.s3.objective.name", "ppo"),
        "rl.s3.objective.name",
        f"unknown objective 'ppo'; valid names: {', '.join(OBJECTIVE_NAMES)}",
    ),
    (
        nested("rl.s1.objective.loss_type", "sum"),
        "rl.s1.objective.loss_type",
        f"unknown loss type 'sum'; valid names: {', '.join(LOSS_TYPES)}",
    ),
    (
        nested("rl.s2.rewards", {"format": 0.5, "length": 0.5}),
        "rl.s2.rewards",
        f"unknown reward 'length'; valid names: {', '.join(REWARD_NAMES)}",
    ),
    (
        nested("rl.s2.rewards", {"format": -1.0}),
        "rl.s2.rewards",
        "weight of reward 'format' must be a finite",
    ),
    (nested("rl.s2.rewards", {}), "rl.s2.rewards", "at least one reward is needed"),
    (
        nested("rl.s1.objective.name", "grpo"),
        "rl.s1",
        "objective grpo has no off-policy term: set buffer.enabled false",
    ),
    (
        nested("rl.s1.buffer.quantiles.hard", 0.8),
        "rl.s1.buffer.quantiles",
        "hard quantile (0.8) must be below",
    ),
    (nested("data.synthetic.frame_size", 50), "data.synthetic.frame_size", "multiple of 28"),
    (nested("data.media.backend", "ffmpeg"), "data.media.backend", "'decord' or 'pyav' (got 'ffmpeg')"),
    (nested("data.source", "jsonl"), "data.path", "required when data.source is 'jsonl'"),
    (nested("model.lora.target_modules", 3), "model.lora.target_modules", "valid string (got 3)"),
    (
        nested("model.tiny.temporal_patch_size", 3),
        "model.tiny.temporal_patch_size",
        "less than or equal to 2 (got 3)",
    ),
    (nested("evaluate.benchmarks", [{"name": "omnibench"}]), "evaluate.benchmarks.0.root", "Field required"),
    (
        nested("rl.s2.rewards", {"format": 1.0}),
        "rl.s2",
        "hints.streak_reward is accuracy but the stage has no accuracy reward",
    ),
    (nested("rl.s2.hints.streak_reward", "format"), "rl.s2.hints.streak_reward", "'accuracy' or 'total'"),
    (
        nested("rl.s1.objective.authors_replay_share", 1.0),
        "rl.s1.objective.authors_replay_share",
        "less than 1 (got 1.0)",
    ),
    (
        nested("evaluate.benchmarks", [{"name": "mmvu", "root": "a"}, {"name": "mmvu", "root": "b"}]),
        "evaluate",
        "evaluate.benchmarks lists mmvu more than once",
    ),
]


@pytest.mark.parametrize(("data", "path", "message"), BAD_INPUTS, ids=[case[1] for case in BAD_INPUTS])
def test_each_bad_input_gives_one_error_naming_its_key_path(
    data: dict[str, Any], path: str, message: str
) -> None:
    text = config_error(data)
    assert text.startswith("invalid configuration in params.yaml:")
    lines = problem_lines(text)
    assert len(lines) == 1, text
    assert lines[0].startswith(f"  {path}: "), text
    assert message in lines[0], text


def test_several_bad_inputs_are_all_reported() -> None:
    data = nested("rl.s1.buffer.capacity", 0)
    data["rl"]["s2"] = {"tas": {"lam": -1}}
    lines = problem_lines(config_error(data))
    assert [line.split(":")[0].strip() for line in lines] == ["rl.s1.buffer.capacity", "rl.s2.tas.lam"]


def test_grpo_baseline_without_buffer_is_valid() -> None:
    stage = RLStageConfig.model_validate({"objective": {"name": "grpo"}, "buffer": {"enabled": False}})
    assert stage.objective.name == "grpo"


def test_unknown_stage_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown RL stage 's4'; valid names: s1, s2, s3"):
        AvatarConfig().rl.stage("s4")


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation such as `list[BenchmarkSpec] | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _model_types(arg)]


def test_every_field_of_every_model_has_a_description() -> None:
    seen: set[type[BaseModel]] = set()
    missing: list[str] = []
    pending: list[type[BaseModel]] = [AvatarConfig]
    pending += [
        obj for obj in vars(config_module).values() if isinstance(obj, type) and issubclass(obj, BaseModel)
    ]
    while pending:
        model = pending.pop()
        if model in seen or model is BaseModel or model is config_module.Section:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if not (field.description or "").strip():
                missing.append(f"{model.__name__}.{name}")
            pending += _model_types(field.annotation)
    assert not missing, f"fields without a description: {missing}"
    assert {"AvatarConfig", "RLStageConfig", "TierRatios", "BenchmarkSpec", "RewardOptions"} <= {
        m.__name__ for m in seen
    }


def test_rl_stages_merge_onto_the_shared_defaults(tmp_path: Path) -> None:
    path = write_params(
        tmp_path,
        {
            "rl": {
                "defaults": {"steps": 50, "optim": {"lr": 1e-4, "max_grad_norm": 0.5}, "tas": {"lam": 0.2}},
                "s2": {"optim": {"lr": 3e-4}, "rewards": {"accuracy": 1.0}, "tasks": ["count_beeps"]},
            }
        },
    )
    cfg = load_config(path)
    assert cfg.rl.s1.steps == cfg.rl.s2.steps == cfg.rl.s3.steps == 50
    assert cfg.rl.s2.optim.lr == 3e-4 and cfg.rl.s2.optim.max_grad_norm == 0.5  # merged key by key
    assert cfg.rl.s1.optim.lr == 1e-4 and cfg.rl.s2.tas.lam == 0.2
    assert cfg.rl.s2.rewards == {"accuracy": 1.0}  # replaced whole, not merged with the default's
    assert cfg.rl.s2.tasks == ["count_beeps"]
    changed = load_config(path, overrides=["rl.defaults.tas.lam=0.4", "rl.s3.tas.lam=0.1"])
    assert (changed.rl.s1.tas.lam, changed.rl.s2.tas.lam, changed.rl.s3.tas.lam) == (0.4, 0.4, 0.1)
    with pytest.raises(ConfigError, match=r"rl.s1.tas.lamda: unknown key"):
        load_config(path, overrides=["rl.s1.tas.lamda=0.4"])
    with pytest.raises(ConfigError) as bad_default:  # reported once, where it was written
        load_config(path, overrides=["rl.defaults.tas.lamda=0.4"])
    assert bad_default.value.problems == [
        (
            "rl.defaults.tas.lamda",
            "unknown key (not a field of this section) (inherited by rl.s1, rl.s2, rl.s3)",
        )
    ]


def test_shipped_params_expand_to_full_stage_sections() -> None:
    cfg = load_config(REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(raw["rl"]["s1"]) < set(raw["rl"]["defaults"])  # stages list only what they change
    for stage in ("s1", "s2", "s3"):
        merged = cfg.rl.stage(stage)
        assert merged.objective == cfg.rl.defaults.objective and merged.buffer == cfg.rl.defaults.buffer
