"""Shrunken random-weight checkpoints in the released layouts: every kind loads and generates.

Each layout (models/layouts.py) is written the way its hub repository ships it, in the legacy
config.json form the repositories still carry and in the form transformers 5 saves. Loading must
read back exactly the weights that were written (under the released names: `thinker.*` with
talker/vocoder tensors beside it, per-expert MoE tensors, `model.*`/`visual.*`), detect the
kind, and give the kind's processor; generation must run with the kind's own media and record
behaviour log-probs equal to the teacher-forced ones, also when the checkpoint's
generation_config.json asks for repetition penalties and top-k (the layouts do, as released).
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from models_helpers import CORPUS, make_clip, video_messages

from avatar_core.models.generation import completion_logprobs, generate_rollouts
from avatar_core.models.inputs import encode_prompts
from avatar_core.models.layout_tokenizer import special_tokens
from avatar_core.models.layouts import LAYOUTS, write_layout
from avatar_core.models.loading import load_policy

PROCESSOR = {
    "qwen2_5_omni": "OmniProcessor",
    "qwen3_omni_moe": "Omni3Processor",
    "qwen2_5_vl": "VLProcessor",
    "causal_lm": "NoneType",
}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """(folder, model written) per (layout, form)."""
    root = tmp_path_factory.mktemp("layouts")
    out = {}
    for name in LAYOUTS:
        for legacy in (True, False):
            folder = root / f"{name}-{'legacy' if legacy else 'v5'}"
            out[name, legacy] = (folder, write_layout(name, folder, legacy=legacy, corpus=CORPUS))
    return out


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "v5"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_loads_the_weights_written(layouts, name, legacy) -> None:
    folder, written = layouts[name, legacy]
    config = json.loads((folder / "config.json").read_text())
    assert ("torch_dtype" in config) == legacy and ("dtype" in config) != legacy
    bundle = load_policy(str(folder), max_pixels=56 * 56)
    assert bundle.kind == LAYOUTS[name].kind
    assert type(bundle.processor).__name__ == PROCESSOR[bundle.kind]
    loaded, expected = bundle.model.state_dict(), written.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    # The tokenizer keeps the released ids of the media tokens its kind uses.
    family = {"qwen2_5_omni": "qwen2_5_omni", "qwen3_omni": "qwen3_omni"}.get(LAYOUTS[name].family, "qwen2")
    released = {token: i for i, token, _ in special_tokens(family)}
    for token in bundle.media_tokens.all():
        assert bundle.tokenizer.convert_tokens_to_ids(token) == released[token]
    assert bundle.tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645


def test_released_files_are_what_the_repositories_ship(layouts) -> None:
    omni = layouts["qwen2_5_omni_7b", True][0]
    index = json.loads((omni / "model.safetensors.index.json").read_text())["weight_map"]
    assert any(k.startswith("thinker.model.layers.") for k in index)
    assert any(k.startswith("thinker.audio_tower.") for k in index)
    assert any(k.startswith("talker.") for k in index) and any(k.startswith("token2wav.") for k in index)
    moe = json.loads((layouts["qwen3_omni_30b_a3b", True][0] / "model.safetensors.index.json").read_text())
    assert "thinker.model.layers.0.mlp.experts.3.down_proj.weight" in moe["weight_map"]
    assert any(k.startswith("code2wav.") for k in moe["weight_map"])
    vl = json.loads((layouts["qwen2_5_vl_3b", True][0] / "model.safetensors.index.json").read_text())
    assert any(k.startswith("visual.blocks.") for k in vl["weight_map"])
    assert any(k.startswith("model.layers.") for k in vl["weight_map"])
    vl_config = json.loads((layouts["qwen2_5_vl_3b", True][0] / "config.json").read_text())
    assert "hidden_size" in vl_config and "text_config" not in vl_config  # the flat legacy form
    assert vl_config["vocab_size"] == 151936 and vl_config["video_token_id"] == 151656
    tok_config = json.loads((omni / "tokenizer_config.json").read_text())
    assert "video_token" not in tok_config and "chat_template" not in tok_config


def _prompts(bundle):
    if bundle.kind == "causal_lm":
        return [video_messages(with_video=False), video_messages("Count.", with_video=False)], [None, None]
    return [video_messages(), video_messages("Count.", with_video=False)], [make_clip(), None]


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_generates_with_its_media_and_logprobs_match(layouts, name) -> None:
    bundle = load_policy(str(layouts[name, True][0]), max_pixels=56 * 56)
    messages, clips = _prompts(bundle)
    inputs = encode_prompts(bundle, messages, clips)
    if bundle.kind in ("qwen2_5_omni", "qwen3_omni_moe"):
        assert inputs["use_audio_in_video"] is True and inputs["input_features"].shape[0] == 1
    else:
        assert "input_features" not in inputs
    if bundle.kind == "qwen2_5_vl":
        assert inputs["pixel_values_videos"].shape[0] > 0 and "mm_token_type_ids" in inputs
    rollouts = generate_rollouts(bundle, inputs, group_size=2, max_new_tokens=8, seed=1, temperature=1.3)
    assert rollouts.completion_ids.shape[0] == 4 and len(rollouts.texts) == 4
    banned = {bundle.tokenizer.convert_tokens_to_ids(t) for t in bundle.media_tokens.all()}
    assert not banned & set(rollouts.completion_ids.flatten().tolist())
    with torch.no_grad():
        teacher = completion_logprobs(
            bundle, inputs, rollouts.completion_ids, rollouts.completion_mask, rollouts.prompt_index, 1.3
        )
    assert (teacher - rollouts.behaviour_logp).abs().max().item() < 1e-4


def test_text_model_refuses_a_clip_and_takes_list_content(layouts) -> None:
    bundle = load_policy(str(layouts["qwen2_5_0_5b_instruct", True][0]))
    with pytest.raises(ValueError, match="prompt 0: the messages hold a video item but no clip was given"):
        encode_prompts(bundle, [video_messages()], [None])
    with pytest.raises(ValueError, match="model kind 'causal_lm' is text only and cannot take a clip"):
        encode_prompts(bundle, [video_messages()], [make_clip()])
    text = bundle.tokenizer.decode(
        encode_prompts(bundle, [video_messages(with_video=False)], [None])["input_ids"][0]
    )
    assert text.startswith("<|im_start|>system\nYou can see and hear.<|im_end|>\n<|im_start|>user\nHow many")


def test_pixel_budget_precedence_is_logged(layouts, caplog) -> None:
    folder = layouts["qwen2_5_vl_3b", True][0]
    with caplog.at_level(logging.INFO, logger="avatar_core.models.processor"):
        params = load_policy(str(folder), max_pixels=56 * 56)
        checkpoint = load_policy(str(folder), max_pixels=56 * 56, preprocessor="checkpoint")
    assert params.processor.video_processor.max_pixels == 56 * 56
    assert checkpoint.processor.video_processor.max_pixels == 12845056
    assert "checkpoint's processor says max_pixels 12845056; using data.media.max_pixels 3136" in caplog.text
    assert "processor pixel budget 12845056 from the checkpoint" in caplog.text
    qwen3 = load_policy(str(layouts["qwen3_omni_30b_a3b", True][0]), max_pixels=64 * 64)
    video = qwen3.processor.video_processor
    assert (video.patch_size, video.factor) == (16, 32)  # architecture settings come from the checkpoint
    assert video.image_mean.tolist() == [0.5, 0.5, 0.5]


def test_wrong_kind_and_missing_media_tokens_are_named(layouts) -> None:
    folder = layouts["qwen2_5_vl_3b", True][0]
    with pytest.raises(ValueError, match="model.kind 'qwen2_5_omni' does not fit this checkpoint"):
        load_policy(str(folder), kind="qwen2_5_omni")
    tokenizer_config = folder.parent / "broken"
    import shutil

    shutil.copytree(folder, tokenizer_config)
    tok = json.loads((tokenizer_config / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != "<|video_pad|>"]
    tok["model"]["vocab"].pop("<|video_pad|>")
    (tokenizer_config / "tokenizer.json").write_text(json.dumps(tok))
    tok_config = json.loads((tokenizer_config / "tokenizer_config.json").read_text())
    tok_config["added_tokens_decoder"].pop("151656")
    tok_config["additional_special_tokens"].remove("<|video_pad|>")
    (tokenizer_config / "tokenizer_config.json").write_text(json.dumps(tok_config))
    with pytest.raises(
        ValueError, match=r"no <\|video_pad\|> token\(s\), which model kind 'qwen2_5_vl' needs"
    ):
        load_policy(str(tokenizer_config))
