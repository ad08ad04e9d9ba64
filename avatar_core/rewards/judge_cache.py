"""Cost control of a model judge: scores cached by (prompt id, completion hash), timed per step.

A frozen judge decoding greedily gives one score per (prompt, completion), so a score is paid for
once: identical completions within a group (frequent with small policies), reruns and resumed
runs that regenerate the same completions, and any replayed trajectory that is scored again hit
the cache instead of the judge. The key is (prompt id, SHA-256 of the completion text) inside a
namespace, the judge's `identity` (model, frames, length budget, prompt version): a different
judge never reads another's scores. Prompt ids are stable (DESIGN.md: a hint does not change the
key), and the judge sees the sample's question and clip, not the hinted prompt.

With a `path`, every new score is appended to a JSON-lines file (the RL stage keeps it in its run
folder, beside the resumable state); scores of other identities in the file are kept and ignored.
A line that does not parse (e.g. cut short by a crash) is reported and skipped. `step_stats()`
returns and resets the per-step counters the RL log records: judge time, lookups, hits, hit rate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avatar_core.rewards.judge import Judge

log = logging.getLogger(__name__)


def completion_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _valid_score(value: Any) -> bool:
    if value is None:
        return True
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 1
    )


class JudgeCache:
    """Judge scores by (prompt id, completion hash) for one judge identity; see the module docstring."""

    def __init__(self, identity: str, path: str | Path | None = None, *, enabled: bool = True) -> None:
        if not identity:
            raise ValueError("a judge cache needs the judge's identity (its namespace)")
        self.identity = identity
        self.path = Path(path) if path is not None else None
        self.enabled = enabled
        self._scores: dict[tuple[str, str], float | None] = {}
        self.rejected_lines: list[str] = []
        self._step = {"time": 0.0, "lookups": 0, "hits": 0, "scored": 0}
        if self.enabled and self.path is not None and self.path.is_file():
            self._load()

    def __len__(self) -> int:
        return len(self._scores)

    def _load(self) -> None:
        assert self.path is not None
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                identity, key = row["judge"], (str(row["id"]), str(row["completion_sha256"]))
                score = row["score"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                self._reject(number, f"not a cache record ({type(err).__name__}: {err})")
                continue
            if not _valid_score(score):
                self._reject(number, f"score {score!r} is not a number in [0, 1] or null")
                continue
            if identity == self.identity:
                self._scores[key] = None if score is None else float(score)

    def _reject(self, number: int, reason: str) -> None:
        message = f"{self.path}:{number}: {reason}; line skipped"
        self.rejected_lines.append(message)
        log.warning("judge cache %s", message)

    def get(self, prompt_id: str, completion: str) -> tuple[bool, float | None]:
        """(found, score) for one completion of one prompt."""
        key = (str(prompt_id), completion_hash(completion))
        if not self.enabled or key not in self._scores:
            return False, None
        return True, self._scores[key]

    def put(self, entries: Sequence[tuple[str, str, float | None]]) -> None:
        """Store (prompt id, completion, score) entries, and append them to the file if there is one."""
        if not self.enabled:
            return
        rows = []
        for prompt_id, completion, score in entries:
            if not _valid_score(score):
                raise ValueError(
                    f"judge cache: score {score!r} for prompt {prompt_id!r} is not in [0, 1] or None"
                )
            key = (str(prompt_id), completion_hash(completion))
            self._scores[key] = score
            rows.append({"judge": self.identity, "id": key[0], "completion_sha256": key[1], "score": score})
        if self.path is not None and rows:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write("".join(json.dumps(row) + "\n" for row in rows))
                f.flush()

    def score(
        self,
        judge: Judge,
        completions: list[str],
        *,
        ids: list[str],
        facts: list[str],
        video: list[str],
        question: list[str],
    ) -> list[float | None]:
        """Scores of `completions`: cached ones read, the rest judged once per distinct key, then stored.

        A completion repeated within the call is judged once and counted as a hit for its repeats.
        """
        n = len(completions)
        if not len(ids) == len(facts) == len(video) == len(question) == n:
            raise ValueError(
                f"judge cache: columns differ in length: completions {n}, ids {len(ids)}, facts {len(facts)}, "
                f"video {len(video)}, question {len(question)}"
            )
        scores: list[float | None] = [None] * n
        first_of_key: dict[tuple[str, str], int] = {}
        to_judge: list[int] = []
        repeats: list[tuple[int, int]] = []
        hits = 0
        for i, (prompt_id, text) in enumerate(zip(ids, completions, strict=True)):
            found, cached = self.get(prompt_id, text)
            key = (str(prompt_id), completion_hash(text))
            if found:
                scores[i] = cached
                hits += 1
            elif key in first_of_key:
                repeats.append((i, first_of_key[key]))
                hits += 1
            else:
                first_of_key[key] = i
                to_judge.append(i)
        started = time.perf_counter()
        if to_judge:
            judged = judge.score(
                [completions[i] for i in to_judge],
                facts=[facts[i] for i in to_judge],
                video=[video[i] for i in to_judge],
                question=[question[i] for i in to_judge],
            )
            if len(judged) != len(to_judge):
                raise ValueError(f"judge returned {len(judged)} scores for {len(to_judge)} completions")
            for i, value in zip(to_judge, judged, strict=True):
                scores[i] = value
            self.put([(ids[i], completions[i], scores[i]) for i in to_judge])
        for i, source in repeats:
            scores[i] = scores[source]
        self._step["time"] += time.perf_counter() - started
        self._step["lookups"] += n
        self._step["hits"] += hits
        self._step["scored"] += len(to_judge)
        return scores

    def step_stats(self) -> dict[str, float | int | None]:
        """Judge time (s), lookups, hits, hit rate and completions judged since the last call; resets them."""
        step = self._step
        stats = {
            "judge_time_s": step["time"],
            "judge_lookups": step["lookups"],
            "judge_cache_hits": step["hits"],
            "judge_cache_hit_rate": step["hits"] / step["lookups"] if step["lookups"] else None,
            "judge_scored": step["scored"],
        }
        self._step = {"time": 0.0, "lookups": 0, "hits": 0, "scored": 0}
        return stats
