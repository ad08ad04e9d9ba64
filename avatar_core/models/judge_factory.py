"""The judge a stage's reward options describe: rule-based, in-process VLM, or served VLM, with its cache.

`build_judge` reads `RewardOptions`: `judge: rule` gives the verifiable `RuleJudge` of the
synthetic data; `judge: model` gives `ServedJudge` when `judge_url` is set, else a
`TransformersJudge` running `judge_model` here. `open_judge_cache` gives the model judge its
score cache (`rewards.judge_cache`), persisted in the stage's run folder when `judge_cache` is on;
the rule judge is free, so it is only timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatar_core.config import RewardOptions
from avatar_core.rewards.judge import Judge, RuleJudge
from avatar_core.rewards.judge_cache import JudgeCache

CACHE_FILE = "judge_cache.jsonl"


def build_judge(options: RewardOptions, media_root: str | Path | None) -> Judge:
    """The judge of `options`; a model judge resolves clip paths under `media_root`."""
    if options.judge == "rule":
        return RuleJudge()
    if options.judge_url:
        from avatar_core.models.judge_client import ServedJudge

        return ServedJudge(
            options.judge_url,
            options.judge_model,
            n_frames=options.judge_frames,
            max_new_tokens=options.judge_max_new_tokens,
            media_root=media_root,
            max_pixels=options.judge_max_pixels,
            timeout_s=options.judge_timeout_s,
            retries=options.judge_retries,
            backoff_s=options.judge_retry_backoff_s,
            concurrency=options.judge_batch_size,
            api_key_env=options.judge_api_key_env,
        )
    from avatar_core.models.judge import TransformersJudge

    return TransformersJudge(
        options.judge_model,
        n_frames=options.judge_frames,
        max_new_tokens=options.judge_max_new_tokens,
        media_root=str(media_root) if media_root is not None else None,
        trust_remote_code=options.judge_trust_remote_code,
        batch_size=options.judge_batch_size,
        dtype=options.judge_dtype,
    )


def open_judge_cache(judge: Any, options: RewardOptions, run_dir: str | Path | None) -> JudgeCache:
    """The score cache (and per-step timer) of `judge`: persisted under `run_dir` for model judges."""
    identity = getattr(judge, "identity", None)
    if identity is None or not options.judge_cache:
        return JudgeCache(identity or type(judge).__name__, enabled=False)
    path = Path(run_dir) / CACHE_FILE if run_dir is not None else None
    return JudgeCache(identity, path)
