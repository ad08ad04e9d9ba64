"""Timings of the tiny policy on this machine: build, training step, generation.

`python -m avatar_core.models.benchmark [--hidden-size 64 --num-layers 2 ...]` prints one JSON
object: parameter counts, seconds to train the tokenizer and build the model, milliseconds per
training step (teacher-forced forward + backward of `completion_logprobs`, batch 8 x 64
completion tokens, video + audio prompts) and per rollout call (8 completions x 32 tokens).
Timings are medians of a few repeats after one warm-up; numbers from timed tests are never used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch

from avatar_core.config import TinyModelConfig
from avatar_core.data.media import Clip
from avatar_core.models.generation import completion_logprobs, generate_rollouts
from avatar_core.models.inputs import encode_prompts
from avatar_core.models.loading import build_tiny_policy

BENCH_CORPUS = [
    "How many beeps do you hear? <think>I hear three beeps.</think><answer>3</answer>",
    "Which coloured object makes the sound? A. red B. green C. blue D. yellow",
] * 50


def _clip(seed: int) -> Clip:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(4, 56, 56, 3), dtype=np.uint8)
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)).astype(np.float32)
    return Clip(frames=frames, audio=audio, sample_rate=16000, audio_missing=False, duration_s=2.0, path="")


def _median_ms(fn: Any, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run(cfg: TinyModelConfig, repeats: int = 5) -> dict[str, Any]:
    start = time.perf_counter()
    bundle = build_tiny_policy(cfg, BENCH_CORPUS)
    build_s = time.perf_counter() - start
    model = bundle.model
    messages = [
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "How many beeps?"}]}]
    ] * 2
    inputs = encode_prompts(bundle, messages, [_clip(0), _clip(1)])
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(20, len(bundle.tokenizer), (8, 64), generator=generator)  # [8, 64]
    mask = torch.ones(8, 64)  # [8, 64]
    prompt_index = torch.arange(2).repeat_interleave(4)  # [8]

    def train_step() -> None:
        model.train()
        logp = completion_logprobs(bundle, inputs, ids, mask, prompt_index)  # [8, 64]
        logp.mean().backward()
        model.zero_grad(set_to_none=True)

    def rollout() -> None:
        generate_rollouts(bundle, inputs, group_size=4, max_new_tokens=32, seed=0)

    return {
        "config": cfg.model_dump(),
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_text_decoder": sum(p.numel() for p in model.model.language_model.parameters())
        + model.lm_head.weight.numel(),
        "vocab": len(bundle.tokenizer),
        "build_tokenizer_and_model_s": round(build_s, 3),
        "train_step_ms_batch8_len64": round(_median_ms(train_step, repeats), 1),
        "generate_ms_8x32": round(_median_ms(rollout, repeats), 1),
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, field in TinyModelConfig.model_fields.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=field.default, help=field.description
        )
    parser.add_argument("--repeats", type=int, default=5, help="Timed repeats after one warm-up.")
    args = vars(parser.parse_args(argv))
    repeats = args.pop("repeats")
    print(json.dumps(run(TinyModelConfig(**args), repeats), indent=2))


if __name__ == "__main__":
    main()
