"""lm-eval task YAMLs for `--model avatar`: `avatar_synth` and one `avatar_<name>` per benchmark adapter.

Pass `--include_path` with `TASKS_DIR` (or `--tasks avatar` for all of them, the tag they share):

    lm_eval --model avatar --model_args pretrained=checkpoints/rl/s3/model --tasks avatar_synth \\
        --include_path "$(python -c 'from avatar_core.evaluation.lm_eval_tasks import TASKS_DIR; print(TASKS_DIR)')"

From a shell, `python -m avatar_core.evaluation.lm_eval_tasks --model avatar --model_args
pretrained=checkpoints/rl/s3/model --tasks avatar_synth` does the same: it registers the model
(bare `lm_eval` cannot import it) and adds the include path.

Every task is `generate_until` over a local JSONL file that `avatar evaluate` exports to
`results/eval/lm_eval/<set>.jsonl` (one line per sample: id, task, prompt = format_question(sample),
answer as text, answer_type, choices, absolute video path). The data_files paths are relative,
so lm-eval resolves them against the working directory: run from the repository root. The
metric `acc` is `score_answers` of `avatar evaluate` (`utils.process_results`).
"""

from __future__ import annotations

from pathlib import Path

TASKS_DIR = str(Path(__file__).resolve().parent)
SYNTH_TASK = "avatar_synth"
TASK_TAG = "avatar"


def benchmark_task(name: str) -> str:
    """lm-eval task name of the benchmark adapter `name`."""
    return f"avatar_{name}"
