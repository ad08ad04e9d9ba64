"""The tiny thinker: forward/backward with audio in video, save/load, the Omni key layout, LoRA."""

from __future__ import annotations

import json

import pytest
import torch
from models_helpers import CORPUS, make_clip, video_messages
from safetensors.torch import save_file
from transformers import Qwen2_5OmniConfig

from avatar_core.config import LoraConfig, TinyModelConfig
from avatar_core.models.inputs import encode_prompts
from avatar_core.models.loading import build_tiny_policy, load_policy, save_policy


@pytest.fixture(scope="module")
def batch(tiny_bundle):
    clips = [make_clip(n_frames=4, seed=0), make_clip(n_frames=6, seconds=1.5, seed=1, tone_hz=880.0)]
    return encode_prompts(tiny_bundle, [video_messages(), video_messages("Which colour?")], clips)


def test_forward_and_backward_reach_every_decoder_parameter(batch) -> None:
    bundle = build_tiny_policy(TinyModelConfig(), CORPUS, seed=3)
    model = bundle.model.train()
    out = model(**batch)
    assert out.logits.shape == (*batch["input_ids"].shape, len(bundle.tokenizer))
    assert torch.isfinite(out.logits).all()
    # A loss that touches every text position, so every decoder weight is on the path.
    out.logits.float().logsumexp(-1).mean().backward()
    decoder = dict(model.model.language_model.named_parameters())
    decoder.update({f"lm_head.{k}": v for k, v in model.lm_head.named_parameters()})
    assert decoder
    missing = [
        name for name, p in decoder.items() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)
    ]
    assert missing == []
    # The media reached the decoder: the encoders got gradients through the merged embeddings.
    assert model.model.audio_tower.proj.weight.grad.abs().sum() > 0
    assert model.model.visual.merger.mlp[0].weight.grad.abs().sum() > 0


def test_bundle_exposes_head_and_hidden_states(tiny_bundle, batch) -> None:
    head = tiny_bundle.lm_head()
    assert head is tiny_bundle.model.lm_head
    with torch.no_grad():
        hidden = tiny_bundle.hidden_states_model()(**batch)[0]
        logits = tiny_bundle.model(**batch).logits
    torch.testing.assert_close(head(hidden), logits, rtol=0, atol=1e-5)


def test_save_and_load_round_trip_gives_identical_logits(tiny_bundle, batch, tmp_path) -> None:
    save_policy(tiny_bundle, tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    loaded = load_policy(str(tmp_path))
    assert loaded.kind == "qwen2_5_omni"
    again = encode_prompts(
        loaded,
        [video_messages(), video_messages("Which colour?")],
        [make_clip(n_frames=4, seed=0), make_clip(n_frames=6, seconds=1.5, seed=1, tone_hz=880.0)],
    )
    for key in ("input_ids", "pixel_values_videos", "input_features"):
        torch.testing.assert_close(again[key], batch[key], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.model(**again).logits, tiny_bundle.model(**batch).logits, rtol=0, atol=0
        )


def test_full_omni_checkpoint_layout_loads_the_thinker(tiny_bundle, batch, tmp_path) -> None:
    thinker = tiny_bundle.model
    state = {f"thinker.{k}": v.detach().clone().contiguous() for k, v in thinker.state_dict().items()}
    state["talker.model.embed_tokens.weight"] = torch.randn(7, 5)
    state["token2wav.code_embedding.weight"] = torch.randn(3, 2)
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    Qwen2_5OmniConfig(thinker_config=thinker.config.to_dict(), enable_audio_output=False).save_pretrained(
        tmp_path
    )
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen2_5_omni"
    tiny_bundle.tokenizer.save_pretrained(tmp_path)
    tiny_bundle.processor.save_pretrained(tmp_path)
    loaded = load_policy(str(tmp_path))
    assert loaded.kind == "qwen2_5_omni"
    assert type(loaded.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(**batch).logits, thinker(**batch).logits, rtol=0, atol=0)


def test_remote_code_model_needs_opt_in(tmp_path) -> None:
    folder = tmp_path / "Ola-7b"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "ola_qwen", "auto_map": {"AutoConfig": "configuration_ola.OlaConfig"}})
    )
    with pytest.raises(ValueError, match=r"Ola-7b.*'ola_qwen'.*remote code.*trust_remote_code=True"):
        load_policy(str(folder))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "llama"}, "unknown model kind 'llama'; valid kinds: auto, qwen2_5_omni"),
        ({"dtype": "int8"}, "unknown dtype 'int8'"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        load_policy(str(tmp_path), **kwargs)


def test_folder_without_config_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no config.json"):
        load_policy(str(tmp_path))


def test_lora_wraps_and_only_adapters_train(tiny_bundle, batch, tmp_path) -> None:
    save_policy(tiny_bundle, tmp_path)
    bundle = load_policy(str(tmp_path), lora=LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in bundle.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("language_model" in n for n in trainable)
    assert bundle.lm_head() is bundle.unwrapped().lm_head  # all-linear leaves the output layer alone
    bundle.model.train()
    out = bundle.model(**batch)
    out.logits.float().logsumexp(-1).mean().backward()
    assert all(p.grad is not None for n, p in bundle.model.named_parameters() if "lora_B" in n)
    # Fresh LoRA (B = 0) leaves the function unchanged.
    with torch.no_grad():
        bundle.model.eval()
        torch.testing.assert_close(
            bundle.model(**batch).logits, tiny_bundle.model(**batch).logits, rtol=0, atol=1e-5
        )


def test_one_frame_per_temporal_patch_gives_each_frame_its_tokens(tiny_bundle, tmp_path) -> None:
    """temporal_patch_size 1: four sampled frames become four token groups, kept through save/load."""
    cfg = TinyModelConfig(temporal_patch_size=1)
    bundle = build_tiny_policy(cfg, CORPUS, seed=0)
    clips = [make_clip(n_frames=4, seed=0)]
    batch = encode_prompts(bundle, [video_messages()], clips)
    assert batch["video_grid_thw"].tolist() == [[4, 4, 4]]  # [T, H/14, W/14]: one group per frame
    assert batch["pixel_values_videos"].shape == (4 * 4 * 4, 3 * 14 * 14)  # patches x (C * tp * p * p)
    with torch.no_grad():
        logits = bundle.model(**batch).logits
    assert torch.isfinite(logits).all()
    save_policy(bundle, tmp_path)
    loaded = load_policy(str(tmp_path))
    again = encode_prompts(loaded, [video_messages()], clips)
    assert again["video_grid_thw"].tolist() == [[4, 4, 4]]
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(**again).logits, logits, rtol=0, atol=0)
    # Qwen's default of 2 merges frame pairs: half the temporal groups.
    default = encode_prompts(tiny_bundle, [video_messages()], clips)
    assert default["video_grid_thw"].tolist() == [[2, 4, 4]]
