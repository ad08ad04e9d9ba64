"""`avatar hints`: one hint per training prompt, cached by prompt id; reruns fill only what is missing."""

from __future__ import annotations

import json

import pytest
import torch
from recipe_helpers import tiny_config

from avatar_core.recipes.common import load_hints, load_samples
from avatar_core.recipes.hints import read_cache, run_hints


def _cache_lines(cfg) -> list[dict]:
    path = cfg.paths.hints_dir + "/hints.jsonl"
    return [json.loads(line) for line in open(path).read().splitlines()]


def test_synthetic_teacher_caches_generator_hints_once(project):
    cfg = tiny_config(project)
    samples = load_samples(cfg, "train")
    first = run_hints(cfg, progress=False)
    assert first["added"] == len(samples) and first["cached_before"] == 0
    lines = _cache_lines(cfg)
    assert {r["id"] for r in lines} == {s.id for s in samples}
    assert all(r["hint"] == next(s.hint for s in samples if s.id == r["id"]) for r in lines)
    again = run_hints(cfg, progress=False)
    assert again["added"] == 0 and again["cached_before"] == len(samples)
    assert len(_cache_lines(cfg)) == len(samples)  # nothing appended twice


def test_partial_cache_is_completed_and_hints_reach_the_recipes(project):
    cfg = tiny_config(project)
    samples = load_samples(cfg, "train")
    path = project / "data" / "hints" / "hints.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"id": samples[0].id, "hint": "look twice", "teacher": "person"}) + "\n")
    summary = run_hints(cfg, progress=False)
    assert summary["added"] == len(samples) - 1
    assert read_cache(path)[samples[0].id]["hint"] == "look twice"  # an existing hint is never replaced
    assert load_hints(cfg, samples)[samples[0].id] == "look twice"


def test_malformed_cache_line_is_named(project):
    cfg = tiny_config(project)
    path = project / "data" / "hints" / "hints.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"id": "a", "hint": "x"}\n{"hint": "no id"}\n')
    with pytest.raises(ValueError, match=r"hints.jsonl:2: malformed hint record"):
        run_hints(cfg, progress=False)


@pytest.mark.slow
def test_model_teacher_writes_one_hint_per_prompt(project, tmp_path):
    """Any transformers causal LM can be the teacher; here a tiny random Qwen2 saved to disk."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from avatar_core.models.tokenizer import train_tokenizer

    tok = train_tokenizer(["Give one short hint. How many beeps do you hear?"] * 20, vocab_size=300)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    teacher = tmp_path / "teacher"
    Qwen2ForCausalLM(config).save_pretrained(teacher)
    tok.save_pretrained(teacher)

    cfg = tiny_config(project)
    cfg.hints.teacher, cfg.hints.max_new_tokens, cfg.hints.batch_size = str(teacher), 6, 8
    samples = load_samples(cfg, "train")
    summary = run_hints(cfg, progress=False)
    assert summary["added"] == len(samples)
    lines = _cache_lines(cfg)
    assert [r["teacher"] for r in lines] == [str(teacher)] * len(samples)
    assert all(isinstance(r["hint"], str) for r in lines)
    assert run_hints(cfg, progress=False)["added"] == 0
