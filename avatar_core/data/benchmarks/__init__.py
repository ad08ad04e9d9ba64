"""Benchmark adapters: a benchmark's released folder (annotations + media) -> `Sample` records.

`load_benchmark("videoholmes", "/data/Video-Holmes")` detects which of the benchmark's released
layouts the folder holds (the creators' release first, then the exports lmms-eval and VLMEvalKit
read), converts each question (question, option texts in letter order, answer, root-relative
media paths, the benchmark's category in `task`, `source` = the benchmark name), says in
`BenchmarkLoad.layout` which layout it read and reports every record it could not convert.
Each adapter names the sources it follows (`adapter.follows`: repository and file) and its
module docstring gives the fields. `write_lm_eval_jsonl` writes samples as a local JSONL data
set for an lm-eval task YAML. How each benchmark is scored lives in
avatar_core.evaluation.official.

Departures from the benchmarks' own evaluation code: every benchmark becomes the same `Sample`,
so prompts come from `schema.render_messages` and differ from each benchmark's template; the
answer is read from the `<answer>` block (see official.py). Open-ended MMVU questions are
skipped (reported): scoring them needs a model judge.
"""

from __future__ import annotations

from pathlib import Path

from avatar_core.data.benchmarks.core import (
    BenchmarkAdapter,
    BenchmarkError,
    BenchmarkLoad,
    Layout,
    run_adapter,
)
from avatar_core.data.benchmarks.intent import IntentBenchAdapter
from avatar_core.data.benchmarks.lm_eval import write_lm_eval_jsonl
from avatar_core.data.benchmarks.odyssey import AVOdysseyAdapter
from avatar_core.data.benchmarks.omni import DailyOmniAdapter, OmniBenchAdapter, WorldSenseAdapter
from avatar_core.data.benchmarks.video import AVCountingAdapter, MMVUAdapter, VideoHolmesAdapter
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
    that escapes `root` always raises. A missing folder or annotation file raises BenchmarkError
    naming what was looked for. An unknown name raises KeyError listing the valid names.
    """
    return run_adapter(BENCHMARKS.get(name), Path(root), limit, strict)


__all__ = [
    "BENCHMARKS",
    "BenchmarkAdapter",
    "BenchmarkError",
    "BenchmarkLoad",
    "Layout",
    "load_benchmark",
    "write_lm_eval_jsonl",
]
