"""Random-weight checkpoints in the released layouts of the Qwen models users bring.

`write_layout(name, folder)` writes a folder that loads like the downloaded repository: its
config.json (field names, token ids and vocabulary size as released), weights under the released
names (`thinker.*` / `talker.*` / `token2wav.*` for Qwen2.5-Omni, `thinker.*` / `talker.*` /
`code2wav.*` with one tensor per MoE expert for Qwen3-Omni, `model.*` / `visual.*` for
Qwen2.5-VL, `model.*` for Qwen2.5 text models) in index-sharded safetensors, tokenizer files
with the released special-token ids and chat template (layout_tokenizer.py), the
preprocessor_config.json of the processor and a generation_config.json. Only the sizes shrink
(`dims="tiny"`: hidden sizes of 16-32, two layers, four experts) unless `dims="released"` asks
for the real shapes (the GPU benchmark's 3B-size step). Talker and vocoder weights are a few
stub tensors: the policy never reads them, and a loader that did would fail loudly.

`legacy=True` writes config.json as the repositories still ship it (transformers 4.5x era:
`rope_scaling` with `type`/`mrope_section`, `torch_dtype`, Qwen2.5-VL's text fields at the top
level with a vision `model_type` of `qwen2_5_vl`); `legacy=False` writes what transformers 5
saves. Tests build these in seconds; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from avatar_core.models.layout_configs import CLIP_MEAN, CLIP_STD, LAYOUTS, Layout, dims_of, layout_config
from avatar_core.models.layout_tokenizer import (
    OMNI_CHAT_TEMPLATE,
    QWEN3_OMNI_CHAT_TEMPLATE,
    TEXT_CHAT_TEMPLATE,
    VL_CHAT_TEMPLATE,
    write_tokenizer,
)

__all__ = ["LAYOUTS", "Layout", "build_layout_model", "layout_config", "released_state_dict", "write_layout"]


# --------------------------------------------------------------------------- weights


def _current_config(layout: Layout, d: dict[str, int], dtype: str):
    """The transformers 5 config object of the trainable part (the thinker for Omni models)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5OmniThinkerConfig,
        Qwen2Config,
        Qwen3OmniMoeThinkerConfig,
    )

    full = layout_config(layout, d, legacy=False)
    if layout.family == "qwen2_5_omni":
        config = Qwen2_5OmniThinkerConfig.from_dict(full["thinker_config"])
    elif layout.family == "qwen3_omni":
        config = Qwen3OmniMoeThinkerConfig.from_dict(full["thinker_config"])
    elif layout.family == "qwen2_5_vl":
        config = Qwen2_5_VLConfig.from_dict(full)
    else:
        config = Qwen2Config.from_dict(full)
    config.dtype = dtype
    return config


def _model_class(layout: Layout):
    import transformers

    return getattr(
        transformers,
        {
            "qwen2_5_omni": "Qwen2_5OmniThinkerForConditionalGeneration",
            "qwen3_omni": "Qwen3OmniMoeThinkerForConditionalGeneration",
            "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
            "qwen2": "Qwen2ForCausalLM",
        }[layout.family],
    )


def released_state_dict(layout: Layout, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers 5 state dict to the names the released safetensors use."""
    out: dict[str, torch.Tensor] = {}
    if layout.family in ("qwen2_5_omni", "qwen3_omni"):
        renames = [
            (r"^model\.language_model\.", "thinker.model."),
            (r"^model\.visual\.", "thinker.visual."),
            (r"^model\.audio_tower\.", "thinker.audio_tower."),
            (r"^lm_head\.", "thinker.lm_head."),
        ]
    elif layout.family == "qwen2_5_vl":
        renames = [(r"^model\.language_model\.", "model."), (r"^model\.visual\.", "visual.")]
    else:
        renames = []
    for key, value in state.items():
        for pattern, target in renames:
            key = re.sub(pattern, target, key)
        fused = re.match(r"^(.*\.mlp\.experts)\.(gate_up_proj|down_proj)$", key)
        if fused:  # released MoE checkpoints hold one Linear per expert: [E, 2I, H] -> E x ([I, H], [I, H])
            prefix, which = fused.groups()
            for e in range(value.shape[0]):
                if which == "gate_up_proj":
                    half = value.shape[1] // 2
                    out[f"{prefix}.{e}.gate_proj.weight"] = value[e, :half].clone()
                    out[f"{prefix}.{e}.up_proj.weight"] = value[e, half:].clone()
                else:
                    out[f"{prefix}.{e}.down_proj.weight"] = value[e].clone()
            continue
        out[key] = value.detach().clone().contiguous()
    if layout.tie_word_embeddings:
        out.pop("lm_head.weight", None)  # tied: the released file stores the embedding only
    return out


def _stub_tensors(layout: Layout) -> dict[str, torch.Tensor]:
    """A few talker / vocoder tensors under their released prefixes (never read by the policy)."""
    g = torch.Generator().manual_seed(1)
    if layout.family == "qwen2_5_omni":
        names = {
            "talker.model.embed_tokens.weight": (64, 8),
            "talker.thinker_to_talker_proj.weight": (8, 8),
            "token2wav.code2wav_dit_model.input_embed.proj.weight": (8, 8),
            "token2wav.code2wav_bigvgan_model.conv_pre.weight": (8, 4, 7),
        }
    elif layout.family == "qwen3_omni":
        names = {
            "talker.model.codec_embedding.weight": (64, 8),
            "talker.text_projection.linear_fc1.weight": (8, 8),
            "code2wav.code_embedding.weight": (64, 8),
        }
    else:
        names = {}
    return {k: torch.randn(shape, generator=g) for k, shape in names.items()}


def _write_weights(folder: Path, tensors: dict[str, torch.Tensor], sharded: bool) -> None:
    if not sharded:
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return
    keys = sorted(tensors)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map: dict[str, str] = {}
    for n, shard in enumerate(shards, 1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: tensors[k] for k in shard}, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _preprocessor_config(layout: Layout) -> dict[str, Any] | None:
    image = {
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "patch_size": 16 if layout.family == "qwen3_omni" else 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5] if layout.family == "qwen3_omni" else CLIP_MEAN,
        "image_std": [0.5, 0.5, 0.5] if layout.family == "qwen3_omni" else CLIP_STD,
        "image_processor_type": "Qwen2VLImageProcessor",
    }
    audio = {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": 128,
        "sampling_rate": 16000,
        "hop_length": 160,
        "chunk_length": 300,
        "n_fft": 400,
        "n_samples": 4800000,
        "nb_max_frames": 30000,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": True,
        "dither": 0.0,
    }
    if layout.family == "qwen2_5_omni":
        return {**image, **audio, "processor_class": "Qwen2_5OmniProcessor"}
    if layout.family == "qwen3_omni":
        return {**image, **audio, "processor_class": "Qwen3OmniMoeProcessor"}
    if layout.family == "qwen2_5_vl":
        return {**image, "processor_class": "Qwen2_5_VLProcessor"}
    return None


_TEMPLATES = {
    "qwen2_5_omni": (OMNI_CHAT_TEMPLATE, "qwen2_5_omni", False),
    "qwen3_omni": (QWEN3_OMNI_CHAT_TEMPLATE, "qwen3_omni", False),
    "qwen2_5_vl": (VL_CHAT_TEMPLATE, "qwen2", True),
    "qwen2": (TEXT_CHAT_TEMPLATE, "qwen2", True),
}


def build_layout_model(
    layout: Layout, dims: str | dict[str, int] = "tiny", seed: int = 0, dtype: str = "float32"
):
    """The trainable model of a layout with seeded random weights (in memory, transformers 5 names)."""
    config = _current_config(layout, dims_of(layout, dims), dtype)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _model_class(layout)._from_config(config, dtype=getattr(torch, dtype))
    return model.eval()


def write_layout(
    name: str,
    folder: str | Path,
    *,
    dims: str | dict[str, int] = "tiny",
    legacy: bool = True,
    seed: int = 0,
    dtype: str = "float32",
    corpus: Iterable[str] = (),
):
    """Write the layout `name` (a key of LAYOUTS) into `folder`; returns the in-memory model.

    The returned model is the one whose weights were written (transformers 5 module names), so
    a test can compare what the loader reads back with it.
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; valid: {', '.join(LAYOUTS)}")
    layout = LAYOUTS[name]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = dims_of(layout, dims)
    model = build_layout_model(layout, dims, seed, dtype)
    tensors = released_state_dict(layout, model.state_dict())
    tensors.update(_stub_tensors(layout))
    _write_weights(folder, tensors, sharded=layout.family != "qwen2")
    config = layout_config(layout, d, legacy)
    config["torch_dtype" if legacy else "dtype"] = dtype
    config["transformers_version"] = "4.50.0.dev0" if legacy else "5.0.0"
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    template, family, in_tokenizer_config = _TEMPLATES[layout.family]
    write_tokenizer(folder, corpus, family, template, template_in_tokenizer_config=in_tokenizer_config)
    preprocessor = _preprocessor_config(layout)
    if preprocessor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    generation = {
        "bos_token_id": 151643,
        "pad_token_id": 151643,
        "eos_token_id": [151645, 151643],
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.05,
    }
    (folder / "generation_config.json").write_text(json.dumps(generation, indent=2))
    return model
