"""`avatar ingest`: the data set (generated or ingested) and the base model the curriculum starts from.

For the embedded default (`model.name_or_path: tiny`) the base model is built here: a byte-level
BPE tokenizer is trained on the training corpus (questions, options, reasoning traces, hints),
then a tiny Qwen2.5-Omni thinker with random weights is saved to `paths.model_dir`. For a real
checkpoint the folder only records which model to load (weights are not copied).
"""

from __future__ import annotations

import logging
from pathlib import Path

from avatar_core.config import AvatarConfig
from avatar_core.data.schema import SYSTEM_PROMPT, format_question
from avatar_core.recipes.common import seed_everything, write_json

log = logging.getLogger(__name__)


def tokenizer_corpus(samples) -> list[str]:
    texts = [SYSTEM_PROMPT, "Hint: "]
    for s in samples:
        texts += [format_question(s), s.reasoning, f"Hint: {s.hint}" if s.hint else ""]
    return [t for t in texts if t]


def run_ingest(cfg: AvatarConfig, progress: bool = True) -> dict:
    from avatar_core.data.ingest import ingest, load_split

    seed_everything(cfg.seed)
    report = ingest(cfg, progress=progress)
    model_dir = Path(cfg.paths.model_dir)
    if cfg.model.name_or_path == "tiny":
        from avatar_core.models.loading import build_tiny_policy, save_policy

        corpus = tokenizer_corpus(load_split(cfg.paths.data_dir, "train"))
        bundle = build_tiny_policy(
            cfg.model.tiny, corpus, seed=cfg.seed, max_pixels=cfg.data.media.max_pixels
        )
        save_policy(bundle, model_dir)
        n_params = sum(p.numel() for p in bundle.model.parameters())
        log.info("built the tiny base model (%.2fM parameters) in %s", n_params / 1e6, model_dir)
    else:
        model_dir.mkdir(parents=True, exist_ok=True)
        n_params = None
    summary = {
        "data": report.as_dict() if hasattr(report, "as_dict") else report,
        "model": cfg.model.name_or_path,
        "parameters": n_params,
    }
    write_json(model_dir / "base.json", summary)
    write_json(Path(cfg.paths.metrics_dir) / "ingest" / "metrics.json", summary)
    return summary
