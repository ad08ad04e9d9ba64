"""SFT's warm-up phase (`sft.warmup`): a first phase on some families alone, then the main phase with
a fresh optimiser and schedule. It must equal the two-run procedure it replaces (an SFT on the
warm-up families, its model copied to a base folder, a second SFT from it), byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from recipe_helpers import tiny_config
from safetensors.torch import load_file

from avatar_core.config import config_from_dict
from avatar_core.recipes import sft as sft_recipe

WARMUP, MAIN = 3, 3


def _config(root: Path, **sft_changes):
    data = tiny_config(root).model_dump(mode="json")  # params.yaml, paths under root
    data["num_threads"] = 1
    data["data"]["num_workers"] = 0
    data["data"]["synthetic"].update(n_train=20, n_val=5, n_test=4, train_only_tasks=["locate"])
    data["sft"].update(max_steps=MAIN, batch_size=4, save_every=1000, eval_every=2, hint_fraction=0.5)
    data["sft"]["warmup"] = {"tasks": ["locate"], "steps": WARMUP}
    data["sft"].update(sft_changes)
    return config_from_dict(data)


@pytest.fixture(scope="module")
def warm_project(tmp_path_factory) -> Path:
    from avatar_core.recipes.common import set_threads
    from avatar_core.recipes.ingest import run_ingest

    set_threads(1)
    root = tmp_path_factory.mktemp("warmup_project")
    run_ingest(_config(root), progress=False)
    return root


def test_warmup_trains_its_families_then_all_with_a_fresh_schedule(warm_project, tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real_loss = sft_recipe.sft_loss

    def spy(bundle, samples, clips, hints=None):
        if bundle.model.training:  # not the validation passes
            seen.append(sorted({s.task for s in samples}))
        return real_loss(bundle, samples, clips, hints)

    monkeypatch.setattr(sft_recipe, "sft_loss", spy)
    root = tmp_path / "p"
    shutil.copytree(warm_project, root)
    cfg = _config(root)
    result = sft_recipe.run_sft(cfg, progress=False)
    assert result["steps"] == WARMUP + MAIN and result["warmup_steps"] == WARMUP
    assert result["warmup_samples"] == 4 and result["train_samples"] == 20  # 20 over five families
    assert seen[:WARMUP] == [["locate"]] * WARMUP
    assert any(tasks != ["locate"] for tasks in seen[WARMUP:])
    log = [
        json.loads(line) for line in (Path(cfg.paths.runs_dir) / "sft" / "log.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in log] == list(range(1, WARMUP + MAIN + 1))
    assert [r.get("phase") for r in log] == ["warmup"] * WARMUP + [None] * MAIN
    # each phase warms its learning rate up from the start of its own schedule
    assert log[WARMUP]["lr"] == pytest.approx(log[0]["lr"]) and log[WARMUP]["lr"] < log[WARMUP - 1]["lr"]
    # validation at the end of each phase, on that phase's families
    assert "val_loss" in log[WARMUP - 1] and "val_loss" in log[-1]
    assert result["val_loss"] == log[-1]["val_loss"]


def test_warmup_equals_the_two_run_procedure(warm_project, tmp_path):
    one = tmp_path / "one"
    shutil.copytree(warm_project, one)
    cfg = _config(one)
    sft_recipe.run_sft(cfg, progress=False)
    together = load_file(Path(cfg.paths.sft_dir) / "model" / "model.safetensors")

    two = tmp_path / "two"
    shutil.copytree(warm_project, two)
    first = _config(two, tasks=["locate"], max_steps=WARMUP, warmup={"tasks": [], "steps": 0})
    sft_recipe.run_sft(first, progress=False)
    start = two / "checkpoints" / "from-warmup"
    start.mkdir()
    for f in (Path(first.paths.sft_dir) / "model").iterdir():
        shutil.copy(f, start)
    shutil.copy(Path(first.paths.model_dir) / "base.json", start)
    second = _config(two, warmup={"tasks": [], "steps": 0})
    second.paths.model_dir, second.paths.sft_dir = str(start), str(two / "checkpoints" / "second")
    second.paths.runs_dir = str(two / "runs2")
    sft_recipe.run_sft(second, progress=False)
    separate = load_file(Path(second.paths.sft_dir) / "model" / "model.safetensors")

    assert together.keys() == separate.keys()
    assert all(together[k].equal(separate[k]) for k in together)


def test_warmup_of_a_family_the_data_lacks_is_refused(warm_project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(warm_project, root)
    with pytest.raises(ValueError, match="sft.warmup.tasks: unknown task 'count_cats'"):
        _config(root, warmup={"tasks": ["count_cats"], "steps": 2})
    with pytest.raises(ValueError, match="sft.warmup: tasks and steps go together"):
        _config(root, warmup={"tasks": ["locate"], "steps": 0})


def test_a_warmup_sample_without_media_is_reported_once(warm_project, tmp_path, caplog):
    from datasets import load_from_disk

    root = tmp_path / "p"
    shutil.copytree(warm_project, root)
    cfg = _config(root)
    # point one `locate` training sample (trained in both phases) at a clip the store does not hold
    dataset_dir = Path(cfg.paths.data_dir) / "dataset"
    splits = load_from_disk(str(dataset_dir))
    train = splits["train"]
    index = train["task"].index("locate")
    missing = train[index]["id"]
    splits["train"] = train.map(
        lambda row, i: {"video": "media/not-there.mp4"} if i == index else {}, with_indices=True
    )
    splits.save_to_disk(str(root / "dataset-edited"))
    shutil.rmtree(dataset_dir)
    (root / "dataset-edited").rename(dataset_dir)

    with caplog.at_level("WARNING", logger="avatar_core.recipes.common"):
        result = sft_recipe.run_sft(cfg, progress=False)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping sample")]
    assert skipped == [f"skipping sample {missing}: no entry in the media store"]
    assert [b["id"] for b in result["rejected_samples"]] == [missing]
    assert result["warmup_samples"] == 3 and result["train_samples"] == 19
