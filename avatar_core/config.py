"""The one typed configuration: pydantic models for every section of params.yaml.

params.yaml holds the values; this module holds what each value means (every field has a
description), its bounds, and the cross-field checks. `load_config(path, overrides)` returns an
`AvatarConfig`; any problem is reported as one `ConfigError` whose lines name the dotted key path,
e.g. `rl.s2.buffer.tiers.hard: ...`. The sections live in four parts by concern, all re-exported
here: config_base (registries, bounds, `Section`, `ConfigError`, the optimiser), config_data (paths,
data, media, loader, model), config_rl (the RL stages and `rl.defaults`), config_eval (evaluation
and the ablation study); this module holds the hints and SFT sections, processes, the remote, the
top-level `AvatarConfig` and the loading.

Defaults follow the paper and the authors' released code where they state a value (lambda_TAS 0.3,
alpha 1.0, beta 0.1, eps 0.2, G 8, window 20, buffer 10,000 in 25/35/40 tiers); params.yaml
overrides them with the miniature values of the embedded default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from avatar_core.config_base import (  # noqa: F401  (re-exported: `avatar_core.config` is the public module)
    BIG,
    CHECKPOINTS,
    CONTROL_NAMES,
    LOSS_TYPES,
    MAX_SEED,
    OBJECTIVE_NAMES,
    REWARD_NAMES,
    SPLITS,
    STAGES,
    ConfigError,
    OptimConfig,
    Section,
)
from avatar_core.config_data import (  # noqa: F401  (re-exported: `avatar_core.config` is the public module)
    DataConfig,
    LoaderConfig,
    LoraConfig,
    MediaConfig,
    ModelConfig,
    PathsConfig,
    SyntheticConfig,
    TinyModelConfig,
)
from avatar_core.config_eval import (  # noqa: F401  (re-exported: `avatar_core.config` is the public module)
    AblationConfig,
    AblationSetting,
    BenchmarkSpec,
    EvaluateConfig,
)
from avatar_core.config_rl import (  # noqa: F401  (re-exported: `avatar_core.config` is the public module)
    BufferConfig,
    DifficultyConfig,
    GenerationConfig,
    HintTriggerConfig,
    ObjectiveConfig,
    RewardOptions,
    RLConfig,
    RLStageConfig,
    TASConfig,
    TierQuantiles,
    TierRatios,
    dotted_to_nested,
    expand_rl_defaults,
    merge_sections,
)


class HintsConfig(Section):
    teacher: str = Field(
        "synthetic", description="'synthetic': the generator's own hints; else a transformers model name."
    )
    max_new_tokens: int = Field(64, gt=0, le=32_768, description="Length budget of a generated hint.")
    batch_size: int = Field(4, gt=0, le=4096, description="Prompts per teacher generation batch.")
    prompt: str = Field(
        "Give one short hint on how to approach this question without revealing the answer.",
        description="Instruction given to the teacher model.",
    )


class SFTWarmupConfig(Section):
    tasks: list[str] = Field(
        default_factory=list,
        description="Families SFT trains on alone before the main phase (empty: no warm-up).",
    )
    steps: int = Field(0, ge=0, le=BIG, description="Optimiser steps of the warm-up (0: no warm-up).")

    @model_validator(mode="after")
    def _both_or_neither(self) -> SFTWarmupConfig:
        if bool(self.tasks) != bool(self.steps):
            raise ValueError(
                f"tasks and steps go together: tasks {self.tasks} with steps {self.steps} "
                "(a warm-up needs both; no warm-up: tasks [] and steps 0)"
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.steps)


class SFTConfig(Section):
    epochs: int = Field(2, gt=0, le=100_000, description="Passes over the training traces.")
    max_steps: int | None = Field(
        None, gt=0, le=BIG, description="Stop after this many optimiser steps (None: epochs)."
    )
    batch_size: int = Field(4, gt=0, le=65_536, description="Samples per micro-batch.")
    grad_accum: int = Field(1, gt=0, le=65_536, description="Micro-batches per optimiser step.")
    optim: OptimConfig = Field(
        default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=10, schedule="cosine"),
        description="Optimiser and schedule.",
    )
    eval_every: int = Field(50, gt=0, le=BIG, description="Validate every N optimiser steps.")
    save_every: int = Field(100, gt=0, le=BIG, description="Checkpoint every N optimiser steps.")
    tasks: list[str] | None = Field(None, description="Task families to train on (None: all).")
    warmup: SFTWarmupConfig = Field(
        default_factory=SFTWarmupConfig,
        description="A first phase on some families alone (e.g. `locate`, where a square is, before "
        "the families that need it), with its own optimiser state and schedule over `warmup.steps`; "
        "the main phase then runs `max_steps` (or `epochs`) on `tasks` with a fresh one.",
    )
    hint_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of training samples rendered with their hint (a system message 'Hint: ...'), so "
        "hinted RL prompts are in distribution; 0 never shows hints in SFT.",
    )


# --------------------------------------------------------------------------- processes


class DistributedConfig(Section):
    num_processes: int = Field(
        1,
        ge=1,
        description="Processes `avatar sft` and `avatar rl` run (one per GPU); above 1 they start "
        "themselves through `accelerate launch`, so dvc repro and the Prefect flow use them too.",
    )
    sharding: Literal["replicated", "fsdp2"] = Field(
        "replicated",
        description="replicated: every process holds the whole model, gradients are all-reduced "
        "(small models); fsdp2: parameters, gradients and optimiser state sharded with "
        "torch.distributed.fsdp.fully_shard (large models).",
    )
    reshard_after_forward: bool = Field(
        True, description="fsdp2: free gathered parameters after each forward (less memory, more traffic)."
    )
    gather_for_rollout: bool = Field(
        True,
        description="fsdp2: gather the whole model once for generation (fast; needs room for all "
        "weights on each device) instead of one decoder layer per forward (slow, little memory).",
    )
    main_process_port: int = Field(
        0, ge=0, le=65535, description="Rendezvous port of the launched processes (0: a free port)."
    )


class RemoteConfig(Section):
    url: str = Field(
        "", description="DVC remote URL, e.g. s3://bucket/prefix ('' : the default local remote)."
    )
    endpoint_url: str = Field("", description="S3 endpoint for S3-compatible stores ('' : AWS).")
    profile: str = Field("", description="AWS profile name; credentials never live in params.yaml.")
    push_after_run: bool = Field(False, description="The flow pushes artifacts to the remote after a run.")
    commit_branch: str = Field(
        "", description="If set, the flow commits dvc.lock on this branch after a run."
    )


class AvatarConfig(Section):
    seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="Global seed for data, model init and sampling; 0..2**32-1, the range every "
        "generator seeded from it accepts (numpy's legacy seeding is the narrowest).",
    )
    num_threads: int = Field(
        0,
        ge=0,
        le=1024,
        description="torch intra-op threads per process (0: torch's default). Tiny models run fastest on 1.",
    )
    paths: PathsConfig = Field(default_factory=PathsConfig, description="Where each stage writes.")
    data: DataConfig = Field(default_factory=DataConfig, description="Data set and media decoding.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Policy model.")
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig, description="Training processes and sharding."
    )
    hints: HintsConfig = Field(default_factory=HintsConfig, description="Hint generation stage.")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="Cold-start SFT.")
    rl: RLConfig = Field(default_factory=RLConfig, description="The three RL stages.")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Benchmark evaluation.")
    ablation: AblationConfig = Field(
        default_factory=AblationConfig, description="The AVATAR vs GRPO ablation and sample-efficiency study."
    )
    remote: RemoteConfig = Field(default_factory=RemoteConfig, description="Artifact remote.")

    @model_validator(mode="after")
    def _ablation_cells(self) -> AvatarConfig:
        """Every (setting, variant) of the study gives a valid RL stage config, checked at load time."""
        ab = self.ablation
        base = self.rl.stage(ab.stage).model_dump(mode="json")
        for setting_name, setting in ab.settings.items():
            for variant in setting.variants:
                raw = merge_sections(base, dotted_to_nested(setting.changes), RLStageConfig)
                raw = merge_sections(raw, dotted_to_nested(ab.variants[variant]), RLStageConfig)
                try:
                    cell = RLStageConfig.model_validate(raw)
                except ValidationError as err:
                    first = err.errors()[0]
                    key = ".".join(str(p) for p in first["loc"] if not _is_schema_tag(p))
                    raise ValueError(
                        f"ablation.variants.{variant}: in setting {setting_name!r} gives an invalid "
                        f"rl.{ab.stage} config: {key or 'stage'}: {first['msg'].removeprefix('Value error, ')}"
                    ) from None
                # the stage's own tasks are checked by _synthetic_data_fits under rl.<stage>.tasks
                generated = self.data.synthetic.all_tasks
                unknown = [repr(t) for t in cell.tasks if t not in generated and t not in base["tasks"]]
                if self.data.source == "synthetic" and unknown:
                    raise ValueError(
                        f"ablation.settings.{setting_name}: variant {variant!r} trains on unknown "
                        f"task{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                        f"data.synthetic generates: {', '.join(generated)}"
                    )
        return self

    @model_validator(mode="after")
    def _synthetic_data_fits(self) -> AvatarConfig:
        """With synthetic data every task a stage names is generated. A family without samples in a
        split, and the tasks of an ingested data set, are reported when a stage loads the data
        (recipes.common.load_samples); whether the clips can hold `n_frames` cues is checked by
        `check_inputs` for `avatar ingest`, the one command that generates them."""
        if self.data.source != "synthetic":
            return self
        problems: list[str] = []
        generated = self.data.synthetic.all_tasks
        wanted = {"sft.tasks": self.sft.tasks or [], "sft.warmup.tasks": self.sft.warmup.tasks}
        wanted |= {f"rl.{s}.tasks": self.rl.stage(s).tasks for s in STAGES}
        for key, names in wanted.items():
            unknown = [repr(n) for n in names if n not in generated]
            if unknown:
                problems.append(
                    f"{key}: unknown task{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                    f"data.synthetic generates: {', '.join(generated)}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --------------------------------------------------------------------------- loading


def _is_schema_tag(part: object) -> bool:
    """pydantic adds union members and validator names to error locations; they are not keys."""
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool", "none") or "[" in part or part.startswith("function-")
    )


_KEYED = re.compile(r"^([a-z_]\w*(?:\.\w+)+): (.+)$", re.S)  # "data.path: reason"


def _problems(err: ValidationError) -> list[tuple[str, str]]:
    """(key path, reason) per problem, one entry per key path (union members' messages joined)."""
    by_path: dict[str, list[str]] = {}
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"] if not _is_schema_tag(p))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not a field of this section)"
        elif e["type"] != "value_error" and isinstance(e.get("input"), (str, int, float, bool)):
            msg = f"{msg} (got {e['input']!r})"  # built-in checks do not name the value
        # A cross-field check names the full key itself ("data.path: ..."), one per line.
        for line in msg.split("\n") if e["type"] == "value_error" else [msg]:
            keyed = _KEYED.match(line)
            where, reason = (keyed.group(1), keyed.group(2)) if keyed else (path, line)
            messages = by_path.setdefault(where or "<root>", [])
            if reason not in messages:
                messages.append(reason)
    return _inherited_once({path: "; or ".join(messages) for path, messages in by_path.items()})


def _inherited_once(problems: dict[str, str]) -> list[tuple[str, str]]:
    """A bad value in rl.defaults fails again in every stage that inherits it: report it once, at
    rl.defaults, naming those stages, rather than four times."""
    inherited: dict[str, list[str]] = {}
    for path, reason in problems.items():
        stage_key = re.fullmatch(r"rl\.(s\d)\.(.+)", path)
        if stage_key and problems.get(f"rl.defaults.{stage_key.group(2)}") == reason:
            inherited.setdefault(f"rl.defaults.{stage_key.group(2)}", []).append(f"rl.{stage_key.group(1)}")
    out = []
    for path, reason in problems.items():
        stage_key = re.fullmatch(r"rl\.(s\d)\.(.+)", path)
        if stage_key and f"rl.{stage_key.group(1)}" in inherited.get(f"rl.defaults.{stage_key.group(2)}", []):
            continue
        stages = inherited.get(path)
        out.append((path, f"{reason} (inherited by {', '.join(stages)})" if stages else reason))
    return out


def _format_error(err: ValidationError, source: str) -> ConfigError:
    problems = _problems(err)
    lines = [f"invalid configuration in {source}:"] + [f"  {path}: {reason}" for path, reason in problems]
    return ConfigError("\n".join(lines), problems)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's own words without its multi-line excerpt of the text."""
    parts = [getattr(err, "context", None), getattr(err, "problem", None)]
    text = ", ".join(p for p in parts if p) or str(err).splitlines()[0]
    return text


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override in place; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key.path=value")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not all(re.fullmatch(r"[\w-]+", part) for part in parts):
        raise ConfigError(
            f"override {assignment!r}: {key!r} is not a dotted key path such as rl.s1.steps",
            [(key or "<empty key>", f"--set {assignment!r}: not a dotted key path such as rl.s1.steps")],
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        reason = f"--set value {raw!r} is not valid YAML ({_yaml_problem(err)})"
        raise ConfigError(f"override {assignment!r}: {reason}", [(key, reason)]) from None
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(
                f"override {assignment!r}: {part!r} is not a section",
                [(key, f"--set {assignment!r}: {part!r} is not a section")],
            )
    node[parts[-1]] = value


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> AvatarConfig:
    try:
        return AvatarConfig.model_validate(expand_rl_defaults(data))
    except ValidationError as err:
        raise _format_error(err, source) from None


def load_config(path: str | Path = "params.yaml", overrides: list[str] | None = None) -> AvatarConfig:
    """Read params.yaml, apply `key.path=value` overrides, validate, return the typed config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}", [(str(path), "params file not found")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        reason = f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
        raise ConfigError(f"{path}: {reason}", [(str(path), reason)]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        reason = f"not valid YAML ({_yaml_problem(err)})"
        raise ConfigError(f"{path} is not valid YAML: {err}", [(where, reason)]) from None
    if not isinstance(data, dict):
        reason = "the top level must be a mapping of sections"
        raise ConfigError(f"{path}: {reason}", [(str(path), reason)])
    for assignment in overrides or []:
        apply_override(data, assignment)
    return config_from_dict(data, str(path))


def check_inputs(cfg: AvatarConfig, command: str) -> None:
    """What a command reads from outside the params file, checked before it starts (ConfigError).

    Only `ingest` reads user files named in the config or generates clips; later stages read what
    ingest wrote and check it themselves (a stage's tasks against the ingested data set, say)."""
    problems: list[tuple[str, str]] = []
    if command == "ingest" and cfg.data.source == "synthetic":
        from avatar_core.data.synthetic_scene import clip_spec

        syn = cfg.data.synthetic
        try:
            clip_spec(syn.frame_size, syn.fps, syn.duration_s, syn.sample_rate, cfg.data.media.n_frames)
        except ValueError as err:
            problems.append(("data.media.n_frames", str(err)))
    if command == "ingest" and cfg.data.source != "synthetic":
        if not Path(cfg.data.path or "").exists():
            problems.append(("data.path", f"{cfg.data.path} does not exist"))
        if cfg.data.media_root and not Path(cfg.data.media_root).is_dir():
            problems.append(("data.media_root", f"{cfg.data.media_root} is not a folder"))
    if problems:
        lines = [f"{where}: {reason}" for where, reason in problems]
        raise ConfigError("\n".join(lines), problems)
