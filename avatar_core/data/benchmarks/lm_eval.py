"""Samples -> a local JSONL data set that an lm-eval task YAML reads (`dataset_path: json`).

One line per sample. For multiple choice, `answer` is the 0-based index of the correct option,
which is what lm-eval's `output_type: multiple_choice` expects from `doc_to_target: answer` with
`doc_to_choice: "{{choices}}"`; the letter travels in `answer_letter`. For numeric and
multi-label questions `answer` is the text ("4", "B,E": a `generate_until` target). `video` is the media path relative to
the benchmark root, or joined onto `media_root` when given, so the model can open it from the
directory lm-eval runs in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from avatar_core.data.schema import OPTION_LETTERS, Sample, format_question


def lm_eval_row(sample: Sample, media_root: str | Path | None = None) -> dict[str, object]:
    def place(rel: str) -> str:
        return str(Path(media_root) / rel) if media_root is not None and rel else rel

    row: dict[str, object] = {
        "id": sample.id,
        "source": sample.source,
        "task": sample.task,
        "question": sample.question,
        "prompt": format_question(sample),
        "choices": list(sample.choices),
        "answer_type": sample.answer_type,
        "video": place(sample.video),
        "extra_media": [place(rel) for rel in sample.extra_media],
    }
    if sample.answer_type == "mc":
        letter = sample.answer.strip().upper()
        row["answer"] = OPTION_LETTERS.index(letter)
        row["answer_letter"] = letter
    else:
        row["answer"] = sample.answer
        row["answer_letter"] = ""
    return row


def write_lm_eval_jsonl(
    samples: Iterable[Sample], path: str | Path, media_root: str | Path | None = None
) -> int:
    """Write one JSON line per sample (validated first); returns the number of lines written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for sample in samples:
            sample.validate(f"{out}: sample {sample.id!r}")
            handle.write(json.dumps(lm_eval_row(sample, media_root), ensure_ascii=False) + "\n")
            count += 1
    return count
