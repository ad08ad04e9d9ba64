"""dvc.yaml against the code: params keys exist in the config model, the graph is the curriculum,
stage commands are CLI commands, and each stage's code deps cover every avatar_core module its
recipe imports (static import walk), so editing that code reruns the stage."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest
import yaml
from dvc.dependency.param import ParamsDependency
from pydantic import BaseModel

from avatar_core.cli import RECIPES
from avatar_core.config import AvatarConfig, load_config
from avatar_core.pipeline.dvc_repo import open_repo
from tasks.stages import CURRICULUM

ROOT = Path(__file__).resolve().parents[2]
# Imported by every stage but not deps on purpose: params.yaml holds every value, so config.py
# (field docs, validators) and the CLI plumbing would otherwise rerun the whole pipeline per edit;
# faults.py does nothing unless the fault suite arms it through the environment.
NOT_DEPS = {
    "avatar_core/__init__.py",
    "avatar_core/faults.py",
    "avatar_core/recipes/__init__.py",
    "avatar_core/config.py",
    "avatar_core/config_base.py",
    "avatar_core/config_data.py",
    "avatar_core/config_rl.py",
    "avatar_core/config_eval.py",
    "avatar_core/registry.py",
    "avatar_core/cli.py",
}
EXPECTED_UPSTREAM = {
    "ingest": set(),
    "hints": {"ingest"},
    "sft": {"ingest", "hints"},  # SFT shows a share of samples with their hint (sft.hint_fraction)
    "rl@s1": {"ingest", "hints", "sft"},
    "rl@s2": {"ingest", "hints", "rl@s1"},
    "rl@s3": {"ingest", "hints", "rl@s2"},
    "evaluate": {"ingest", "sft", "rl@s1", "rl@s2", "rl@s3"},
}


@pytest.fixture(scope="module")
def stages() -> dict[str, dict]:
    with open_repo(ROOT) as repo:
        graph = repo.index.graph
        return {
            stage.addressing: {
                "cmd": stage.cmd,
                "params": [key for d in stage.deps if isinstance(d, ParamsDependency) for key in d.params],
                "deps": [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)],
                "upstream": {up.addressing for up in graph.successors(stage)},
            }
            for stage in repo.index.stages
        }


def config_has_key(dotted: str) -> bool:
    """Whether a dotted key names a config field; a dict-valued field (e.g. ablation.variants) takes
    any name as its next part, and its values' own fields (or anything, for plain dicts) after that."""
    node: object = AvatarConfig
    free_key = False
    for part in dotted.split("."):
        if free_key:
            free_key = False
            continue
        if node is ANY:
            continue
        if not isinstance(node, type) or not issubclass(node, BaseModel) or part not in node.model_fields:
            return False
        annotation = node.model_fields[part].annotation
        if typing.get_origin(annotation) is dict:
            value = typing.get_args(annotation)[1]
            node = value if isinstance(value, type) and issubclass(value, BaseModel) else ANY
            free_key = True
        else:
            node = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return True


ANY = object()  # below a plain dict field every key is accepted


def test_config_key_walk_rejects_unknown_keys() -> None:
    assert config_has_key("rl.s3.tas.lam") and config_has_key("paths.eval_dir") and config_has_key("seed")
    assert config_has_key("ablation.settings.binary.changes") and config_has_key("ablation.variants.grpo")
    assert not config_has_key("ablation.settings.binary.chnages")
    assert (
        not config_has_key("rl.s4")
        and not config_has_key("rl.s1.tas.lambda")
        and not config_has_key("seed.x")
    )


def test_every_params_key_is_a_config_field_and_in_params_yaml(stages: dict[str, dict]) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in stages.items():
        assert stage["params"], f"stage {name} names no params"
        for key in stage["params"]:
            assert config_has_key(key), (
                f"dvc.yaml stage {name}: params key {key!r} is not a field of AvatarConfig"
            )
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, (
                    f"stage {name}: {key!r} missing from params.yaml"
                )
                node = node[part]


def test_rl_stages_depend_only_on_their_own_section(stages: dict[str, dict]) -> None:
    """Each RL stage reads the shared defaults and its own section, never another stage's; besides,
    the model (checkpoint, LoRA, dtype), the media settings and the processes, which every stage's
    result depends on (its fingerprint includes them too)."""
    shared = ["data.media", "distributed", "model"]
    for item in ("s1", "s2", "s3"):
        assert sorted(stages[f"rl@{item}"]["params"]) == sorted(
            [*shared, "rl." + item, "rl.defaults", "seed"]
        )


def test_graph_is_the_curriculum_then_the_study(stages: dict[str, dict]) -> None:
    curriculum = {name: stage["upstream"] for name, stage in stages.items() if name in CURRICULUM}
    assert curriculum == EXPECTED_UPSTREAM
    cfg = load_config(ROOT / "params.yaml")
    cells = {
        f"ablation-{setting}@{variant}-{seed}"
        for setting, spec in cfg.ablation.settings.items()
        for variant in spec.variants
        for seed in cfg.ablation.seeds
    }
    for cell in cells:  # every cell starts from the same SFT checkpoint and stage data
        assert stages[cell]["upstream"] == {"ingest", "hints", "sft"}, cell
    assert stages["ablation"]["upstream"] == cells
    assert set(stages) == set(CURRICULUM) | cells | {"ablation"}
    for name in CURRICULUM:  # the flow's fixed order respects the graph
        assert all(CURRICULUM.index(up) < CURRICULUM.index(name) for up in EXPECTED_UPSTREAM[name])


def test_commands_are_cli_commands_with_the_params_file(stages: dict[str, dict]) -> None:
    for name, stage in stages.items():
        words = stage["cmd"].split()
        assert words[0] == "avatar" and words[1] in RECIPES, f"stage {name}: {stage['cmd']!r}"
        assert words[words.index("--params") + 1] == "params.yaml"
        if name.startswith("rl@"):
            assert words[words.index("--stage") + 1] == name.removeprefix("rl@")


def _module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] == "avatar_core"}


def import_closure(module: str) -> set[str]:
    """Repo-relative files of every avatar_core module `module` imports, transitively (parents'
    __init__ included, since importing a submodule runs them)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            path = _module_file(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(_imported_modules(path))
    return {str(p.relative_to(ROOT)) for p in seen}


def test_import_closure_follows_relative_and_lazy_imports() -> None:
    closure = import_closure("avatar_core.pipeline.remote")
    assert {
        "avatar_core/pipeline/remote.py",
        "avatar_core/pipeline/dvc_repo.py",
        "avatar_core/config.py",
    } <= closure
    assert "avatar_core/recipes/history.py" not in closure


@pytest.mark.parametrize("name", CURRICULUM)
def test_code_deps_cover_what_the_recipe_imports(stages: dict[str, dict], name: str) -> None:
    command = stages[name]["cmd"].split()[1]
    module = RECIPES[command].split(":")[0]
    recipe_file = module.replace(".", "/") + ".py"
    deps = [d.rstrip("/") for d in stages[name]["deps"] if d.startswith("avatar_core")]
    assert recipe_file in deps, f"stage {name} must depend on its recipe {recipe_file}"
    assert (ROOT / recipe_file).is_file(), f"stage {name}: recipe {recipe_file} does not exist"
    uncovered = sorted(
        f for f in import_closure(module) - NOT_DEPS if not any(f == d or f.startswith(d + "/") for d in deps)
    )
    assert not uncovered, f"dvc.yaml stage {name} runs code it does not list as deps: {uncovered}"


def test_media_settings_rerun_ingest_and_reader_settings_rerun_nothing(stages: dict[str, dict]) -> None:
    """data.media decides what the media store holds; data.loader (cache, read-ahead) and
    data.num_workers change how fast, never what: no stage may list them, and ingest must not list
    `data` whole (that would include them)."""
    assert "data.media" in stages["ingest"]["params"]
    for name, stage in stages.items():
        for key in stage["params"]:
            assert key not in ("data", "data.loader", "data.num_workers"), (name, key)
            assert not key.startswith("data.loader."), (name, key)
    listed = {k.removeprefix("data.") for k in stages["ingest"]["params"] if k.startswith("data.")}
    from avatar_core.config import DataConfig

    assert listed == set(DataConfig.model_fields) - {"loader", "num_workers"}
