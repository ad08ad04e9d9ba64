"""Every model kind through the curriculum: SFT -> RL -> evaluate, LoRA off and on.

The base model is a shrunken random-weight checkpoint in a released layout (models/layouts.py,
legacy config.json form) named by `model.name_or_path`, as a user would point params.yaml at a
downloaded repository. The data are the tiny project's synthetic clips (video with sound):
- Qwen2.5-Omni and Qwen3-Omni take them whole (video + audio in video);
- Qwen2.5-VL cannot hear: with the default `unsupported_media: reject` every sample is rejected
  with a reason, with `drop` the clips run as frames only (logged);
- a causal LM takes text only: rejected with a reason, or with `drop` the questions go as text.
Each stage must do real work: SFT moves the trainable weights (the adapter under LoRA), RL runs
its step with a KL reference (beta > 0: a second copy without LoRA, the adapters switched off
with it), evaluation scores every test sample with the S1 checkpoint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from recipe_helpers import tiny_config
from safetensors.torch import load_file

from avatar_core.config import config_from_dict
from avatar_core.models.layouts import LAYOUTS, write_layout

KIND_LAYOUTS = {  # layout -> unsupported_media policy the end-to-end run uses
    "qwen2_5_omni_7b": "reject",
    "qwen3_omni_30b_a3b": "reject",
    "qwen2_5_vl_3b": "drop",
    "qwen2_5_0_5b_instruct": "drop",
}


@pytest.fixture(scope="module")
def layout_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kinds")
    corpus = ["How many flashes do you see?", "<think>I count two flashes.</think><answer>2</answer>"]
    out = {}
    for name in KIND_LAYOUTS:
        write_layout(name, root / name, corpus=corpus)
        out[name] = root / name
    return out


def _config(project: Path, layout: Path, lora: bool, media: str, tag: str):
    data = tiny_config(project).model_dump(mode="json")
    data["model"].update(name_or_path=str(layout), unsupported_media=media)
    data["model"]["lora"].update(enabled=lora, r=4, alpha=8, dropout=0.0)
    for key in ("sft_dir", "rl_dir", "runs_dir", "metrics_dir", "eval_dir"):
        data["paths"][key] = str(project / tag / key)
    data["sft"].update(max_steps=2, batch_size=2, eval_every=1000)
    s1 = data["rl"]["s1"]
    s1.update(steps=1, prompts_per_step=2, group_size=2)
    s1["generation"]["max_new_tokens"] = 6
    s1["objective"]["beta"] = 0.1
    data["evaluate"].update(checkpoints=["s1"], control_checkpoints=[], max_new_tokens=6, batch_size=4)
    return config_from_dict(data)


def _sft_moved_the_policy(cfg, lora: bool) -> bool:
    """SFT changed the policy; under LoRA its folder holds the adapter chain, not weights."""
    from avatar_core.recipes.policy import load_stage_policy

    sft_model = Path(cfg.paths.sft_dir) / "model"
    if lora:
        chain = json.loads((sft_model / "lora_chain.json").read_text())
        assert chain["base_stage"] == "base" and chain["adapters"] == ["sft"]
        assert not list(sft_model.glob("model*.safetensors"))  # adapters only
        adapter = load_file(str(sft_model / "adapters" / "sft" / "adapter_model.safetensors"))
        assert adapter and all("lora_" in k for k in adapter)
    base = load_stage_policy(cfg, "base").model.state_dict()
    after = load_stage_policy(cfg, "sft").model.state_dict()
    assert base.keys() == after.keys()
    return any(not torch.equal(base[k], after[k]) for k in base)


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("name", list(KIND_LAYOUTS))
def test_kind_runs_sft_rl_and_evaluate(project: Path, layout_dirs, name: str, lora: bool) -> None:
    from avatar_core.recipes.evaluate import run_evaluate
    from avatar_core.recipes.policy import load_stage_policy
    from avatar_core.recipes.rl import run_rl
    from avatar_core.recipes.sft import run_sft

    cfg = _config(project, layout_dirs[name], lora, KIND_LAYOUTS[name], "run")
    sft = run_sft(cfg, progress=False)
    assert sft["steps"] == 2 and math.isfinite(sft["final_loss"]) and sft["rejected_samples"] == []
    assert _sft_moved_the_policy(cfg, lora)

    rl = run_rl(cfg, "s1", progress=False)
    assert rl["steps"] == 1 and rl["completions"] == 2 * 2
    policy = load_stage_policy(cfg, "s1")
    assert policy.kind == LAYOUTS[name].kind
    if lora:
        chain = json.loads((Path(cfg.paths.rl_dir) / "s1" / "model" / "lora_chain.json").read_text())
        assert chain["adapters"] == ["sft", "s1"]

    results = run_evaluate(cfg, progress=False)  # the S1 checkpoint (adapters merged under LoRA)
    assert set(results["stages"]) == {"s1"}
    media = results["stages"]["s1"]["test"]["media"]
    assert media["n"] == cfg.data.synthetic.n_test and 0.0 <= media["accuracy"] <= 1.0
    record = json.loads((Path(cfg.paths.runs_dir) / "s1" / "log.jsonl").read_text().splitlines()[0])
    assert math.isfinite(record["loss"]) and record["kl_mean"] >= 0.0  # the reference ran


@pytest.mark.parametrize("name, what", [("qwen2_5_vl_3b", "audio"), ("qwen2_5_0_5b_instruct", "video")])
def test_unsupported_media_is_rejected_with_a_reason(
    project: Path, layout_dirs, name: str, what: str
) -> None:
    from avatar_core.recipes.sft import run_sft

    cfg = _config(project, layout_dirs[name], False, "reject", "reject")
    kind = LAYOUTS[name].kind
    with pytest.raises(
        ValueError, match=rf"sft train: all \d+ samples rejected: model kind {kind} .* cannot take the {what}"
    ):
        run_sft(cfg, progress=False)


def test_dropped_media_reach_the_model_as_its_kind_takes_them(project: Path, layout_dirs, caplog) -> None:
    from avatar_core.data.schema import render_messages
    from avatar_core.models.inputs import encode_prompts
    from avatar_core.models.kinds import fit_samples
    from avatar_core.recipes.common import load_samples, open_clips
    from avatar_core.recipes.policy import load_stage_policy

    cfg = _config(project, layout_dirs["qwen2_5_vl_3b"], False, "drop", "drop")
    samples = load_samples(cfg, "train")
    with caplog.at_level("WARNING"):
        kept, rejected = fit_samples("qwen2_5_vl", samples, "drop", "sft train")
    assert rejected == [] and len(kept) == len(samples)
    assert f"{len(samples)} sample(s) run without it" in caplog.text and "frames only" in caplog.text
    bundle = load_stage_policy(cfg, "base")
    batch = encode_prompts(bundle, [render_messages(s) for s in kept[:2]], open_clips(cfg).get_many(kept[:2]))
    assert "pixel_values_videos" in batch and "input_features" not in batch
    text_kept, _ = fit_samples("causal_lm", samples, "drop", "sft train")
    assert all(s.video == "" for s in text_kept) and all(
        s.question == o.question for s, o in zip(text_kept, samples, strict=True)
    )
    assert torch.is_tensor(batch["input_ids"])
