"""Stage fingerprints follow the model's identity and the preprocessor settings, not folder names.

A stage is "up to date" only when nothing it depends on changed: the base model (a hub snapshot
or a local folder's config, tokenizer and weight headers, not `paths.model_dir`), the model
settings (kind, dtype, LoRA, which pixel budget wins), the media settings and the processes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from recipe_helpers import tiny_config

from avatar_core.config import config_from_dict
from avatar_core.models.layouts import write_layout
from avatar_core.recipes.policy import checkpoint_identity, data_identity, stage_identity


def _with(cfg, **changes):
    data = cfg.model_dump(mode="json")
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return config_from_dict(data)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ids")
    write_layout("qwen2_5_0_5b_instruct", root / "a", seed=0)
    write_layout("qwen2_5_0_5b_instruct", root / "b", seed=1)
    return root / "a", root / "b"


def test_identity_changes_with_what_the_stage_depends_on(tmp_path: Path, two_models) -> None:
    a, b = two_models
    cfg = _with(tiny_config(tmp_path), model__name_or_path=str(a))
    base = stage_identity(cfg, "base")
    assert stage_identity(cfg, "base") == base
    assert stage_identity(_with(cfg, model__name_or_path=str(b)), "base") != base
    assert stage_identity(_with(cfg, model__preprocessor="checkpoint"), "base") != base
    assert stage_identity(_with(cfg, data__media__max_pixels=112 * 112), "base") != base
    assert stage_identity(_with(cfg, model__lora__enabled=True), "base") != base
    assert stage_identity(_with(cfg, distributed__num_processes=2), "base") != base
    assert stage_identity(_with(cfg, distributed__main_process_port=29500), "base") == base
    assert "tiny" not in base["model"]  # the embedded model's shape does not matter for a real one


def test_local_folder_identity_reads_content_not_the_path(tmp_path: Path, two_models) -> None:
    a, b = two_models  # same layout and config, different random weights
    copy = tmp_path / "elsewhere"
    shutil.copytree(a, copy)
    assert checkpoint_identity(str(copy)) == checkpoint_identity(str(a)) != checkpoint_identity(str(b))
    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5
    (copy / "config.json").write_text(json.dumps(config))
    assert checkpoint_identity(str(copy)) != checkpoint_identity(str(a))
    assert checkpoint_identity(str(tmp_path / "Qwen" / "not-here")).startswith("hub:")


def test_sft_is_not_up_to_date_after_only_the_model_changed(project: Path) -> None:
    """The reported bug: `avatar sft` after changing only model.name_or_path said "up to date"."""
    from avatar_core.recipes.sft import run_sft

    cfg = tiny_config(project)
    done = json.loads((project / "checkpoints" / "sft" / "done.json").read_text())
    assert run_sft(cfg, progress=False)["fingerprint"] == done["fingerprint"]  # unchanged: up to date
    moved = _with(cfg, model__name_or_path=str(project / "no-such-model"))
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        run_sft(moved, progress=False)  # it tried to load the new model instead of skipping


def test_data_identity_reads_content_not_the_path(tmp_path: Path) -> None:
    from avatar_core.recipes.ingest import run_ingest

    def ingest(name: str, seed: int) -> Path:
        cfg = tiny_config(tmp_path / name)
        run_ingest(_with(cfg, seed=seed), progress=False)
        return Path(cfg.paths.data_dir)

    assert data_identity(tmp_path / "nothing" / "data") is None  # before ingest
    first, again, other = ingest("a", 0), ingest("b", 0), ingest("c", 1)
    assert data_identity(first) == data_identity(again) != data_identity(other)
    moved = tmp_path / "moved"
    shutil.copytree(first, moved)
    assert data_identity(moved) == data_identity(first)
    (moved / "media_store" / "index.npz").write_bytes(b"edited")  # the clips' CRCs are in the index
    assert data_identity(moved) != data_identity(first)


def test_sft_is_not_up_to_date_after_only_the_data_changed(project: Path) -> None:
    """`avatar ingest` with other data, then `avatar sft`, used to say "up to date"."""
    from avatar_core.recipes.ingest import run_ingest
    from avatar_core.recipes.sft import run_sft

    cfg = tiny_config(project)
    done = json.loads((project / "checkpoints" / "sft" / "done.json").read_text())
    before = stage_identity(cfg, "base")
    # new clips in the same data folder; the base model is written elsewhere so only the data differ
    run_ingest(_with(cfg, seed=cfg.seed + 1, paths__model_dir=str(project / "other_base")), progress=False)
    after = stage_identity(cfg, "base")
    assert after["data"] != before["data"]
    assert {k: v for k, v in after.items() if k != "data"} == {k: v for k, v in before.items() if k != "data"}
    result = run_sft(cfg, progress=False)
    assert result["fingerprint"] != done["fingerprint"] and result["steps"] == cfg.sft.max_steps  # it trained
