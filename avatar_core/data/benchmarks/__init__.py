"""Benchmark adapters: a benchmark's released folder (annotations + media) -> `Sample` records.

`load_benchmark("worldsense", "/data/WorldSense")` reads the annotation file where the benchmark's
release puts it, converts each question (question, option texts in letter order, answer letter,
root-relative media paths, the benchmark's task type in `task`, `source` = the benchmark name) and
reports every record it could not convert. `write_lm_eval_jsonl` writes samples as a local JSONL
data set for an lm-eval task YAML.

Departures from the authors' evaluation code: the AVATAR authors prompt each benchmark with its own
template; here every benchmark becomes the same `Sample`, so prompts come from
`schema.render_messages` and differ from theirs. IntentBench yes/no questions become two-option
questions; multi-label IntentBench and open-ended MMVU questions are skipped (and reported).
Formats not confirmed from a released file are named in `omni.py` and `video.py`.
"""

from __future__ import annotations

from pathlib import Path

from avatar_core.data.benchmarks.core import BenchmarkAdapter, BenchmarkError, BenchmarkLoad, run_adapter
from avatar_core.data.benchmarks.lm_eval import write_lm_eval_jsonl
from avatar_core.data.benchmarks.omni import (
    DailyOmniAdapter,
    IntentBenchAdapter,
    OmniBenchAdapter,
    WorldSenseAdapter,
)
from avatar_core.data.benchmarks.video import (
    AVCountingAdapter,
    AVOdysseyAdapter,
    MMVUAdapter,
    VideoHolmesAdapter,
)
from avatar_core.registry import Registry

BENCHMARKS: Registry[BenchmarkAdapter] = Registry("benchmark")
for _adapter_class in (
    OmniBenchAdapter,
    DailyOmniAdapter,
    AVCountingAdapter,
    WorldSenseAdapter,
    MMVUAdapter,
    VideoHolmesAdapter,
    AVOdysseyAdapter,
    IntentBenchAdapter,
):
    BENCHMARKS.register(_adapter_class.name)(_adapter_class())


def load_benchmark(
    name: str, root: str | Path, limit: int | None = None, strict: bool = False
) -> BenchmarkLoad:
    """Convert the benchmark `name` found in folder `root`.

    limit: stop after this many accepted samples (records are read in file order).
    strict: raise BenchmarkError on the first malformed record instead of reporting it in
    `rejected`. Missing media files are always reported per record, never raised; a media path
    that escapes `root` always raises. An unknown name raises KeyError listing the valid names.
    """
    return run_adapter(BENCHMARKS.get(name), Path(root), limit, strict)


__all__ = [
    "BENCHMARKS",
    "BenchmarkAdapter",
    "BenchmarkError",
    "BenchmarkLoad",
    "load_benchmark",
    "write_lm_eval_jsonl",
]
