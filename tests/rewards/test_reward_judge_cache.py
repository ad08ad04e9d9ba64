"""The judge score cache: keyed by (judge, prompt id, completion hash), persisted, timed per step."""

from __future__ import annotations

import hashlib
import json

import pytest

from avatar_core.config import RewardOptions
from avatar_core.rewards.functions import make_judge_reward
from avatar_core.rewards.judge import RuleJudge
from avatar_core.rewards.judge_cache import JudgeCache, completion_hash

FACTS = '{"count": 3}'


class CountingJudge:
    """The rule judge, counting the completions it is asked to score."""

    identity = "counting-rule-judge"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score(self, completions, *, facts, video, question):
        self.seen += list(completions)
        return RuleJudge().score(completions, facts=facts, video=video, question=question)


def columns(n: int) -> dict[str, list[str]]:
    return {"facts": [FACTS] * n, "video": [""] * n, "question": ["q"] * n}


GOOD = "<think>3 beeps</think><answer>3</answer>"
BAD = "<think>4 beeps</think><answer>4</answer>"


def test_hits_misses_and_repeats_within_a_call() -> None:
    judge, cache = CountingJudge(), JudgeCache(CountingJudge.identity)
    scores = cache.score(judge, [GOOD, BAD, GOOD, GOOD], ids=["p", "p", "p", "q"], **columns(4))
    assert scores == [1.0, 0.0, 1.0, 1.0]
    assert judge.seen == [GOOD, BAD, GOOD]  # (p, GOOD) judged once; (q, GOOD) is another prompt
    stats = cache.step_stats()
    assert stats.pop("judge_time_s") >= 0.0
    assert stats == {
        "judge_lookups": 4,
        "judge_cache_hits": 1,
        "judge_cache_hit_rate": 0.25,
        "judge_scored": 3,
    }
    judge.seen.clear()
    assert cache.score(judge, [BAD, GOOD], ids=["p", "q"], **columns(2)) == [0.0, 1.0]
    assert judge.seen == []  # both were scored before
    stats = cache.step_stats()
    assert stats["judge_cache_hit_rate"] == 1.0 and stats["judge_scored"] == 0
    assert cache.step_stats()["judge_lookups"] == 0  # counters reset per step
    assert cache.step_stats()["judge_cache_hit_rate"] is None


def test_judge_time_is_measured() -> None:
    import time

    class SlowJudge(CountingJudge):
        def score(self, completions, **cols):
            time.sleep(0.05)
            return super().score(completions, **cols)

    cache = JudgeCache("slow")
    cache.score(SlowJudge(), [GOOD], ids=["p"], **columns(1))
    assert cache.step_stats()["judge_time_s"] >= 0.05
    cache.score(SlowJudge(), [GOOD], ids=["p"], **columns(1))
    assert cache.step_stats()["judge_time_s"] < 0.05  # a hit does not call the judge


def test_scores_persist_across_runs_and_stay_in_their_namespace(tmp_path) -> None:
    path = tmp_path / "run" / "judge_cache.jsonl"
    first = JudgeCache("judge-a", path)
    first.score(CountingJudge(), [GOOD, BAD], ids=["p", "p"], **columns(2))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [
        {
            "judge": "judge-a",
            "id": "p",
            "completion_sha256": hashlib.sha256(GOOD.encode()).hexdigest(),
            "score": 1.0,
        },
        {"judge": "judge-a", "id": "p", "completion_sha256": completion_hash(BAD), "score": 0.0},
    ]
    rerun, judge = JudgeCache("judge-a", path), CountingJudge()
    assert len(rerun) == 2 and rerun.score(judge, [BAD, GOOD], ids=["p", "p"], **columns(2)) == [0.0, 1.0]
    assert judge.seen == []  # a rerun does not pay twice
    other, judge = JudgeCache("judge-b", path), CountingJudge()
    assert len(other) == 0
    other.score(judge, [GOOD], ids=["p"], **columns(1))
    assert judge.seen == [GOOD]  # another judge never reads judge-a's scores
    assert len(JudgeCache("judge-a", path)) == 2 and len(JudgeCache("judge-b", path)) == 1


def test_none_scores_are_cached_too(tmp_path) -> None:
    path = tmp_path / "cache.jsonl"
    judge = CountingJudge()
    cache = JudgeCache("j", path)
    assert cache.score(judge, [GOOD], ids=["p"], facts=["{}"], video=[""], question=["q"]) == [None]
    assert JudgeCache("j", path).get("p", GOOD) == (True, None)


def test_bad_lines_are_reported_and_skipped(tmp_path, caplog) -> None:
    path = tmp_path / "cache.jsonl"
    good = {"judge": "j", "id": "p", "completion_sha256": completion_hash(GOOD), "score": 0.5}
    lines = [
        json.dumps(good),
        '{"judge": "j", "id": "p", "completion_sha',  # cut short by a crash
        json.dumps({**good, "score": 1.5}),
        json.dumps({**good, "score": "high"}),
        json.dumps({"judge": "j", "score": 0.5}),
        "",
    ]
    path.write_text("\n".join(lines))
    cache = JudgeCache("j", path)
    assert cache.get("p", GOOD) == (True, 0.5) and len(cache) == 1
    assert [m.split(": ", 1)[0] for m in cache.rejected_lines] == [f"{path}:{n}" for n in (2, 3, 4, 5)]
    assert "score 1.5 is not a number in [0, 1]" in cache.rejected_lines[1]
    assert "line skipped" in caplog.text


def test_disabled_cache_still_times_and_never_stores(tmp_path) -> None:
    path = tmp_path / "cache.jsonl"
    cache, judge = JudgeCache("j", path, enabled=False), CountingJudge()
    cache.score(judge, [GOOD], ids=["p"], **columns(1))
    cache.score(judge, [GOOD], ids=["p"], **columns(1))
    assert judge.seen == [GOOD, GOOD] and not path.exists()
    assert cache.step_stats()["judge_lookups"] == 2


def test_bad_inputs_are_named() -> None:
    cache = JudgeCache("j")
    with pytest.raises(ValueError, match="ids 1, facts 2"):
        cache.score(CountingJudge(), [GOOD, BAD], ids=["p"], **columns(2))
    with pytest.raises(ValueError, match="not in \\[0, 1\\]"):
        cache.put([("p", GOOD, 2.0)])
    with pytest.raises(ValueError, match="identity"):
        JudgeCache("")


def test_judge_reward_goes_through_the_cache_by_prompt_id() -> None:
    judge = CountingJudge()
    cache = JudgeCache(judge.identity)
    reward = make_judge_reward(judge, cache=cache)
    assert reward([GOOD, GOOD], id=["p", "p"], **columns(2)) == [1.0, 1.0]
    assert judge.seen == [GOOD]
    with pytest.raises(ValueError, match="needs the column 'id'"):
        reward([GOOD], **columns(1))


def test_reward_options_hold_no_credentials() -> None:
    assert RewardOptions(judge="model", judge_url="http://h:8000/v1/").judge_url == "http://h:8000/v1"
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        RewardOptions(judge_api_key_env="sk-abc123-not-a-name!")
    with pytest.raises(ValueError, match="http"):
        RewardOptions(judge="model", judge_url="gpu-host:8000")
    with pytest.raises(ValueError, match="set judge: model"):
        RewardOptions(judge="rule", judge_url="http://h:8000/v1")
