"""LoRA through the curriculum: RL trains the adapter only, the reference is the adapters switched off.

- Three RL updates through the recipe's loss path (`objective_step` with beta > 0, clipping,
  AdamW) on the SFT policy with a fresh adapter: every base weight is bit-identical afterwards,
  every adapter matrix moved (B from its zero start), and the optimiser holds adapter
  parameters only.
- The KL reference is the same module with the adapter off: its log-probs equal those of a
  separately loaded copy of the starting policy, while the trained policy's differ.
- The recipe writes adapters, not weights: SFT and S1 folders hold the chain [sft] and
  [sft, s1]; loading S1 merges both into the base; the merged export equals that.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from recipe_helpers import tiny_config
from safetensors.torch import load_file

from avatar_core.config import config_from_dict


def _lora_config(project: Path, **extra):
    data = tiny_config(project).model_dump(mode="json")
    data["model"]["lora"].update(enabled=True, r=4, alpha=8, dropout=0.0, **extra)
    s1 = data["rl"]["s1"]
    s1["objective"]["beta"] = 0.1
    s1["optim"]["lr"] = 1e-2
    return config_from_dict(data)


def test_rl_updates_train_the_adapter_only_and_reference_is_the_base(project: Path) -> None:
    from avatar_core.data.schema import render_messages
    from avatar_core.models.generation import completion_logprobs, generate_rollouts
    from avatar_core.models.inputs import encode_prompts
    from avatar_core.recipes.common import load_samples, open_clips
    from avatar_core.recipes.policy import load_stage_policy, load_trainable_policy, reference_policy
    from avatar_core.recipes.rl import objective_params
    from avatar_core.recipes.rl_batch import collate, rows_from_rollouts
    from avatar_core.recipes.rl_parts import Distributed, build_optimizer, objective_step

    cfg = _lora_config(project)
    scfg = cfg.rl.s1
    dist = Distributed()
    bundle = load_trainable_policy(cfg, "sft", dist)
    ref = reference_policy(cfg, bundle, "sft", dist)
    assert ref.model is bundle.model  # no second copy of the weights
    base_before = {n: p.detach().clone() for n, p in bundle.model.named_parameters() if "lora_" not in n}
    adapters_before = {n: p.detach().clone() for n, p in bundle.model.named_parameters() if "lora_" in n}
    assert adapters_before and all(
        p.requires_grad is ("lora_" in n) for n, p in bundle.model.named_parameters()
    )
    optimizer, _ = build_optimizer(bundle.model, scfg.optim, 3)
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {
        id(p) for n, p in bundle.model.named_parameters() if "lora_" in n
    }

    clips = open_clips(cfg)
    samples = load_samples(cfg, "train", scfg.tasks)[:2]
    inputs = encode_prompts(bundle, [render_messages(s) for s in samples], clips.get_many(samples))
    rollouts = generate_rollouts(bundle, inputs, group_size=4, max_new_tokens=10, seed=2)
    rewards = [0.2 * (i % 4) for i in range(8)]
    advantages = torch.tensor([(r - 0.3) / 0.25 for r in rewards])  # [N]
    rows = rows_from_rollouts(samples, [False, False], rollouts, rewards, advantages)
    bundle.model.train()
    for _ in range(3):
        tb = collate(bundle, rows, clips, {}, bundle.tokenizer.pad_token_id)
        objective_step(bundle, ref, tb, objective_params(scfg), scfg, dist)
        dist.clip_grad_norm_(bundle.model, scfg.optim.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for name, p in bundle.model.named_parameters():
        if name in base_before:
            assert torch.equal(p, base_before[name]), f"base weight {name} changed"
        else:
            assert not torch.equal(p, adapters_before[name]), f"adapter {name} did not move"

    start = load_stage_policy(cfg, "sft")  # a separate copy of the starting policy
    args = (inputs, rollouts.completion_ids, rollouts.completion_mask, rollouts.prompt_index)
    with torch.no_grad():
        ref_lp = completion_logprobs(ref, *args)
        copy_lp = completion_logprobs(start, *args)
        policy_lp = completion_logprobs(bundle, *args)
    torch.testing.assert_close(ref_lp, copy_lp, rtol=0, atol=1e-6)
    assert (policy_lp - copy_lp).abs().max() > 1e-4


@pytest.mark.slow
def test_recipe_checkpoints_hold_adapter_chains_and_a_merged_export(project: Path) -> None:
    from avatar_core.models.loading import load_policy
    from avatar_core.models.lora import ADAPTER_WEIGHTS
    from avatar_core.recipes.policy import MERGED_DIR, load_stage_policy
    from avatar_core.recipes.rl import run_rl
    from avatar_core.recipes.sft import run_sft

    cfg = _lora_config(project, merged_export=True)
    data = cfg.model_dump(mode="json")
    data["paths"]["sft_dir"] = str(project / "checkpoints" / "sft_lora")
    data["sft"].update(max_steps=3)
    cfg = config_from_dict(data)
    base_digest = sorted(p.stat().st_mtime_ns for p in (project / "checkpoints" / "base").iterdir())
    run_sft(cfg, progress=False)
    run_rl(cfg, "s1", progress=False)

    s1 = project / "checkpoints" / "rl" / "s1" / "model"
    chain = json.loads((s1 / "lora_chain.json").read_text())
    assert chain["base_stage"] == "base" and chain["adapters"] == ["sft", "s1"]
    assert chain["lora"]["r"] == 4
    assert not list(s1.glob("model*.safetensors"))  # no full weights beside the adapters
    sft_adapter = load_file(str(s1 / "adapters" / "sft" / ADAPTER_WEIGHTS))
    s1_adapter = load_file(str(s1 / "adapters" / "s1" / ADAPTER_WEIGHTS))
    copied = load_file(str(Path(cfg.paths.sft_dir) / "model" / "adapters" / "sft" / ADAPTER_WEIGHTS))
    assert all(torch.equal(sft_adapter[k], copied[k]) for k in copied)
    assert any(float(v.abs().max()) > 0 for k, v in s1_adapter.items() if "lora_B" in k)
    assert sorted(p.stat().st_mtime_ns for p in (project / "checkpoints" / "base").iterdir()) == base_digest

    merged = load_stage_policy(cfg, "s1")
    exported = load_policy(str(s1 / MERGED_DIR)).model.state_dict()  # a plain checkpoint
    live = merged.model.state_dict()
    assert exported.keys() == live.keys()
    for key, value in exported.items():
        torch.testing.assert_close(value, live[key], rtol=0, atol=0)
    base = load_stage_policy(cfg, "base").model.state_dict()
    assert any(not torch.equal(base[k], live[k]) for k in base)
