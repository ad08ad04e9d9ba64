"""The optimiser's parameter groups: encoders at a share of the learning rate, or frozen."""

from __future__ import annotations

import pytest
import torch

from avatar_core.config import OptimConfig, TinyModelConfig
from avatar_core.models.loading import build_tiny_policy
from avatar_core.recipes.rl_parts import build_optimizer, is_tower_parameter, tower_of

CORPUS = ["How many beeps do you hear?", "<think>I hear 2 beeps.</think><answer>2</answer>"]


@pytest.fixture()
def model():
    return build_tiny_policy(TinyModelConfig(), CORPUS * 50, seed=0).model


def test_tower_parameters_are_the_encoders(model):
    names = [n for n, _ in model.named_parameters()]
    towers = [n for n in names if is_tower_parameter(n)]
    assert towers and all(n.startswith(("model.visual.", "model.audio_tower.")) for n in towers)
    assert not any(
        is_tower_parameter(n) for n in ("lm_head.weight", "model.language_model.layers.0.mlp.up_proj.weight")
    )
    assert is_tower_parameter("base_model.model.model.visual.blocks.0.attn.qkv.lora_A.default.weight")


def test_encoders_get_a_share_of_the_learning_rate(model):
    optimizer, scheduler = build_optimizer(model, OptimConfig(lr=1e-3, tower_lr_scale=0.1), total_steps=10)
    rest, vision, audio = optimizer.param_groups
    n_tower = sum(1 for n, _ in model.named_parameters() if is_tower_parameter(n))
    assert rest["lr"] == pytest.approx(1e-3)
    assert vision["lr"] == pytest.approx(1e-4) and audio["lr"] == pytest.approx(1e-4)
    assert len(vision["params"]) + len(audio["params"]) == n_tower
    assert len(rest["params"]) + n_tower == len(list(model.parameters()))


def test_each_encoder_can_be_set_apart(model):
    names = {id(p): n for n, p in model.named_parameters()}
    cfg = OptimConfig(lr=1e-3, tower_lr_scale=0.5, vision_lr_scale=0.0, audio_lr_scale=1.0)
    optimizer, _ = build_optimizer(model, cfg, total_steps=10)
    rest, audio = optimizer.param_groups  # the frozen vision encoder has no group
    assert audio["lr"] == pytest.approx(1e-3)
    assert {tower_of(names[id(p)]) for p in audio["params"]} == {"audio"}
    assert {tower_of(names[id(p)]) for p in rest["params"]} == {None}
    for n, p in model.named_parameters():
        assert p.requires_grad == (tower_of(n) != "vision"), n
    assert tower_of("model.visual.merger.mlp.0.weight") == "vision"
    assert tower_of("model.audio_tower.proj.weight") == "audio"


def test_a_scale_of_zero_freezes_the_encoders(model):
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer, _ = build_optimizer(model, OptimConfig(lr=1e-2, tower_lr_scale=0.0), total_steps=10)
    assert len(optimizer.param_groups) == 1
    for n, p in model.named_parameters():
        assert p.requires_grad == (not is_tower_parameter(n))
    out = model(input_ids=torch.tensor([[1, 2, 3, 4]]))
    out.logits.sum().backward()
    optimizer.step()
    for n, p in model.named_parameters():
        if is_tower_parameter(n):
            assert torch.equal(p, before[n]), n
    assert not torch.equal(model.lm_head.weight, before["lm_head.weight"])
