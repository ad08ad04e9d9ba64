"""The synthetic generator: answers recoverable from the decoded media, balance, honesty, determinism."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, TINY_SEED

from avatar_core.config import SyntheticConfig
from avatar_core.data.datasets_io import SPLITS, load_split
from avatar_core.data.media import load_clip
from avatar_core.data.schema import OPTION_LETTERS
from avatar_core.data.synthetic import generate_dataset, plan_dataset, render_sample, spec_from_config
from avatar_core.data.synthetic_scene import PALETTE, QUADRANTS, STYLES, clip_spec
from avatar_core.data.synthetic_sync import AV_COLOURS, AV_RGB, PATTERN_FLOOR, glow_mask, landmark
from avatar_core.data.synthetic_tasks import TASKS

N_FRAMES = 4
TRACE = re.compile(r"^<think>(?P<think>.+)</think><answer>(?P<answer>[^<]+)</answer>$")


def _all(root: Path) -> list:
    return [s for split in SPLITS for s in load_split(root, split)]


def _layouts(root_samples) -> dict[str, dict]:
    spec = spec_from_config(TINY, N_FRAMES)
    plan = {p.id: p for p in plan_dataset(TINY, TINY_SEED, spec)}
    return {s.id: render_sample(plan[s.id], spec, TINY_SEED).layout for s in root_samples}


def _box_brightness(frames: np.ndarray, box) -> np.ndarray:
    y0, x0, y1, x1 = box
    return frames[:, y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].mean(axis=(1, 2, 3))  # [n] inner pixels only


def _lit(frames: np.ndarray, box) -> np.ndarray:
    level = _box_brightness(frames, box)  # [n]
    return level > (level.min() + level.max()) / 2


def _tone_at_sampled_frames(audio: np.ndarray, rate: int, fps: int, slots) -> np.ndarray:
    energy = np.array(
        [np.sqrt(np.mean(audio[round(s / fps * rate) : round((s + 1) / fps * rate)] ** 2)) for s in slots]
    )
    return energy > (energy.min() + energy.max()) / 2


def _count_beeps(audio: np.ndarray, rate: int) -> int:
    """Runs of loud 40 ms cells: beeps start and end on the audio-token grid, so cells are clean."""
    cells = audio[: len(audio) // round(0.04 * rate) * round(0.04 * rate)].reshape(-1, round(0.04 * rate))
    rms = np.sqrt((cells**2).mean(axis=1))  # [cells]
    loud = rms > (np.median(rms) + rms.max()) / 2
    return int(np.sum(loud[1:] & ~loud[:-1]) + loud[0])


def _nearest_colour(rgb: np.ndarray) -> str:
    return min(PALETTE, key=lambda name: np.abs(np.asarray(PALETTE[name]) / 255 - rgb / rgb.max()).sum())


def _channel_lit(frames: np.ndarray, box, colour: str, difficulty: str) -> np.ndarray:
    """Lit state of a square over the frames, read in its own colour channel (the other squares'
    scene glows add to other channels), against the level midway between dim and lit (a square
    may be lit on every sampled frame, so the threshold cannot come from the clip itself)."""
    y0, x0, y1, x1 = box
    channel = int(np.argmax(AV_RGB[colour]))
    level = frames[:, y0 + 2 : y1 - 2, x0 + 2 : x1 - 2, channel].mean(axis=(1, 2))  # [n]
    style = STYLES[difficulty]
    return level > AV_RGB[colour][channel] * (style.dim + style.lit) / 2


def _tone_on(audio: np.ndarray, rate: int, fps: int, slots, difficulty: str) -> np.ndarray:
    """Whether a tone sounds on each sampled frame: RMS over the frame against half the tone's."""
    rms = np.array(
        [np.sqrt(np.mean(audio[round(s / fps * rate) : round((s + 1) / fps * rate)] ** 2)) for s in slots]
    )
    return rms > STYLES[difficulty].tone_amp / np.sqrt(2) / 2


def _square_colour(frames: np.ndarray, box) -> str:
    y0, x0, y1, x1 = box
    inner = frames[:, y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].reshape(frames.shape[0], -1, 3).mean(axis=1)  # [n, 3]
    brightest = inner[inner.sum(axis=1).argmax()]
    return min(
        AV_COLOURS, key=lambda c: np.abs(np.asarray(AV_RGB[c]) / 255 - brightest / brightest.max()).sum()
    )


def _quadrant_of(box) -> str:
    y0, x0, y1, x1 = box
    row, col = int((y0 + y1) / 2 >= 28), int((x0 + x1) / 2 >= 28)
    return QUADRANTS[2 * row + col]


def test_answers_are_recoverable_from_the_sampled_frames_and_audio(tiny_synthetic):
    """A rule-based solver on the decoded clip (4 uniformly sampled frames, 56 px, 16 kHz audio)
    recovers every answer, easy and hard: the cues survive encoding and sampling."""
    samples = _all(tiny_synthetic)
    layouts = _layouts(samples)
    slots = clip_spec(TINY.frame_size, TINY.fps, TINY.duration_s, TINY.sample_rate, N_FRAMES).slots
    assert {(s.task, s.difficulty) for s in samples} == {(t, d) for t in TINY.tasks for d in ("easy", "hard")}
    for s in samples:
        clip = load_clip(tiny_synthetic / s.video, n_frames=N_FRAMES, max_pixels=56 * 56)
        layout = layouts[s.id]
        if s.task == "count_flashes":
            assert int(_lit(clip.frames, layout["boxes"][0]).sum()) == int(s.answer), s.id
        elif s.task == "count_beeps":
            assert _count_beeps(clip.audio, clip.sample_rate) == int(s.answer), s.id
            assert int(_lit(clip.frames, layout["boxes"][0]).sum()) != int(s.answer)  # the distractor differs
        else:
            tone = _tone_on(clip.audio, clip.sample_rate, TINY.fps, slots, s.difficulty)  # [slots]
            colours = [_square_colour(clip.frames, box) for box in layout["boxes"]]
            lit = [
                _channel_lit(clip.frames, box, c, s.difficulty)
                for box, c in zip(layout["boxes"], colours, strict=True)
            ]
            # exactly one square flashes in time with the beeps, and only it flashes as often
            assert [i for i, pattern in enumerate(lit) if np.array_equal(pattern, tone)] == [layout["target"]]
            matches = [i for i, pattern in enumerate(lit) if pattern.sum() == tone.sum()]
            assert matches == [layout["target"]], (s.id, tone, lit)
            answer_text = s.choices[OPTION_LETTERS.index(s.answer)]
            if s.task == "av_match":
                assert colours[matches[0]] == answer_text, s.id
            else:
                assert _quadrant_of(layout["boxes"][matches[0]]) == answer_text, s.id


def test_sync_traces_state_the_true_counts_up_to_the_match(tiny_synthetic):
    """Every count a sync trace states is the rendered one, in the fixed colour order, and the trace
    stops at the square that flashes as many times as the beeps."""
    samples = [s for s in _all(tiny_synthetic) if s.task in ("av_match", "localise")]
    layouts = _layouts(samples)
    for s in samples:
        layout = layouts[s.id]
        think = TRACE.match(s.reasoning)["think"]
        beeps = int(re.match(r"I hear (\d+) beeps; ", think).group(1))
        assert beeps == layout["beeps"]
        stated = re.findall(r"(red|green|blue) flashes (\d+)", think)
        colours = [c for c, _ in stated]
        assert colours == sorted(colours, key=AV_COLOURS.index)
        assert [int(n) == beeps for _, n in stated] == [False] * (len(stated) - 1) + [True]
        assert think.count("as many") == 1


def test_records_are_complete_and_traces_correct(tiny_synthetic):
    for split in SPLITS:
        for s in load_split(tiny_synthetic, split):
            family = TASKS.get(s.task)
            assert (
                s.id.startswith(f"{s.task}-{split}-") and s.stage == family.stage and s.source == "synthetic"
            )
            assert (tiny_synthetic / s.video).is_file() and s.video == f"media/{s.id}.mp4"
            assert s.hint == family.hint and s.difficulty in ("easy", "hard")
            trace = TRACE.match(s.reasoning)
            assert trace and trace["answer"] == s.answer, s.reasoning
            facts = json.loads(s.facts)
            for value in facts.values():  # what the rule judge checks is stated in the trace
                assert re.search(rf"\b{re.escape(str(value))}\b", trace["think"]), (s.id, s.reasoning)
            if s.answer_type == "mc":
                assert (
                    s.choices
                    == {"av_match": list(AV_COLOURS), "localise": list(QUADRANTS), "locate": list(QUADRANTS)}[
                        s.task
                    ]
                )
                assert s.choices[OPTION_LETTERS.index(s.answer)] in facts.values()


def test_question_text_carries_no_information(tiny_synthetic):
    """One question per family and one fixed option list per multiple-choice family, with the correct
    letter balanced, so text alone cannot beat chance."""
    samples = _all(tiny_synthetic)
    questions = defaultdict(set)
    for s in samples:
        questions[s.task].add(s.question)
    assert all(len(q) == 1 for q in questions.values()), questions
    assert {tuple(s.choices) for s in samples if s.task == "localise"} == {QUADRANTS}
    assert {tuple(s.choices) for s in samples if s.task == "av_match"} == {AV_COLOURS}


def _glow_scores(frames: np.ndarray, lit: list[int], channel: int) -> dict[str, float]:
    """For each quadrant's stripes spread over the frame: how much more the flash brightens the
    pixels on them than those off them (mean lit frame minus mean unlit frame, one colour channel)."""
    unlit = [i for i in range(len(frames)) if i not in lit]
    diff = frames[lit, ..., channel].mean(axis=0) - frames[unlit, ..., channel].mean(axis=0)  # [H, W]
    scores = {}
    for quadrant in QUADRANTS:
        on = landmark(quadrant, *diff.shape) > 0  # [H, W]
        scores[quadrant] = float(diff[on].mean() - diff[~on].mean())
    return scores


@pytest.mark.parametrize("glow", ["plain", "patterned"])
def test_locate_answer_and_glow_read_from_the_decoded_clip(tmp_path, glow):
    """locate: one square, silent, its quadrant is the answer. With a patterned glow its flashes
    brighten the frame along its own quadrant's stripes (and only those); with plain glow evenly."""
    cfg = SyntheticConfig(n_train=8, n_val=0, n_test=4, tasks=["locate"], hard_fraction=0.5, glow=glow)
    generate_dataset(cfg, tmp_path, 3, progress=False, n_frames=N_FRAMES, num_workers=0)
    spec = spec_from_config(cfg, N_FRAMES)
    plan = {p.id: p for p in plan_dataset(cfg, 3, spec)}
    samples = _all(tmp_path)
    assert len(samples) == 12 and {s.difficulty for s in samples} == {"easy", "hard"}
    for s in samples:
        layout = render_sample(plan[s.id], spec, 3).layout
        clip = load_clip(tmp_path / s.video, n_frames=N_FRAMES, max_pixels=56 * 56)
        (box,) = layout["boxes"]
        place = s.choices[OPTION_LETTERS.index(s.answer)]
        assert s.choices == list(QUADRANTS) and _quadrant_of(box) == place
        assert TRACE.match(s.reasoning)["think"] == f"The square is at the {place}."
        assert np.abs(clip.audio).max() < 0.01  # no sound to go by
        lit = [i for i, slot in enumerate(spec.slots) if slot in layout["flash_slots"][0]]
        channel = int(np.argmax(AV_RGB[_square_colour(clip.frames, box)]))
        scores = _glow_scores(clip.frames.astype(np.float32), lit, channel)
        if glow == "patterned":
            others = [v for q, v in scores.items() if q != place]
            assert scores[place] > 20 and max(others) < scores[place] / 2, (s.id, scores)
        else:
            assert max(abs(v) for v in scores.values()) < 10, (s.id, scores)


def test_glow_mask():
    plain = clip_spec(56, 8, 2.0, 16000, N_FRAMES)
    patterned = clip_spec(56, 8, 2.0, 16000, N_FRAMES, patterned_glow=True)
    assert np.array_equal(glow_mask(plain, "top left"), np.ones((56, 56), dtype=np.float32))
    mask = glow_mask(patterned, "top right")  # vertical stripes 4 px wide: x // 4 odd
    assert mask.shape == (56, 56) and np.unique(mask).tolist() == pytest.approx([PATTERN_FLOOR, 1.0])
    assert mask[0, 4] == 1.0 and mask[0, 0] == pytest.approx(PATTERN_FLOOR) and mask[30, 4] == 1.0


def test_answers_balanced_within_split_task_and_difficulty():
    spec = spec_from_config(SyntheticConfig(), N_FRAMES)
    plan = plan_dataset(SyntheticConfig(), 0, spec)  # the default 240 / 48 / 96
    groups = defaultdict(list)
    for p in plan:
        groups[(p.split, p.task, p.difficulty)].append(p.answer_key)
    for (split, task, level), keys in groups.items():
        counts = Counter(keys)
        n_answers = TASKS.get(task).n_answers(level, spec)
        assert set(counts) == set(range(n_answers)) or len(keys) < n_answers, (split, task, level, counts)
        assert max(counts.values()) - min(counts.values()) <= 1, (split, task, level, counts)
    per_task_split = Counter((p.split, p.task) for p in plan)
    assert per_task_split[("train", "av_match")] == 60 and per_task_split[("test", "localise")] == 24
    hard = Counter(p.split for p in plan if p.difficulty == "hard")
    assert hard == {"train": 4 * 24, "validation": 4 * 5, "test": 4 * 10}  # round(0.4 * n) per family


def _digest(root: Path) -> dict[str, str]:
    """Hash of every file but the datasets fingerprint file (state.json holds a random fingerprint)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "state.json"
    }


def test_same_seed_same_bytes_whatever_the_worker_count(tiny_synthetic, tmp_path):
    again = tmp_path / "again"
    generate_dataset(TINY, again, TINY_SEED, progress=False, n_frames=N_FRAMES, num_workers=2)
    first, second = _digest(tiny_synthetic), _digest(again)
    assert len(first) == 28 + 3 * 2 + 3 and first == second  # clips, per split data + info, dict/card/stats


def test_other_seed_other_clips(tmp_path):
    small = SyntheticConfig(n_train=4, n_val=1, n_test=1, tasks=["count_beeps"])
    generate_dataset(small, tmp_path / "a", 1, progress=False)
    generate_dataset(small, tmp_path / "b", 2, progress=False)
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[k] != b[k] for k in a if k.endswith(".mp4"))


def test_data_card(tiny_synthetic):
    card = (tiny_synthetic / "README.md").read_text()
    assert "| total | 16 | 4 | 8 |" in card and f"seed {TINY_SEED}" in card
    assert "frames [0, 5, 10, 15] of 16" in card
    stats = json.loads((tiny_synthetic / "stats.json").read_text())
    assert stats["train"]["av_match"]["difficulty"]["easy"]["chance"] == 0.3333  # rounded in the card
    assert stats["train"]["localise"]["difficulty"]["hard"]["chance"] == 0.25


def test_generator_settings_are_checked(tmp_path):
    with pytest.raises(
        KeyError, match="unknown synthetic task 'count_cats'; valid names: av_match, count_beeps"
    ):
        # the config refuses the name at load time; the generator checks again for configs built without it
        unchecked = SyntheticConfig.model_construct(
            **{**SyntheticConfig().model_dump(), "tasks": ["count_cats"]}
        )
        generate_dataset(unchecked, tmp_path, 0, progress=False)
    with pytest.raises(ValueError, match="need n_frames >= 4"):
        generate_dataset(SyntheticConfig(), tmp_path, 0, progress=False, n_frames=3)
    with pytest.raises(ValueError, match="too short for 8 separate cues; need at least 15 frames"):
        generate_dataset(SyntheticConfig(fps=4, duration_s=2.0), tmp_path, 0, progress=False, n_frames=8)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        generate_dataset(SyntheticConfig(n_train=1, n_val=0, n_test=1), tmp_path, -1, progress=False)
    assert STYLES["hard"].side < STYLES["easy"].side and STYLES["hard"].tone_amp < STYLES["easy"].tone_amp


def test_train_only_families_stay_out_of_the_test_split():
    spec = spec_from_config(SyntheticConfig(), N_FRAMES)
    plain = SyntheticConfig(n_train=40, n_val=10, n_test=8)
    extra = SyntheticConfig(n_train=40, n_val=10, n_test=8, train_only_tasks=["locate"])
    with_extra = Counter((p.split, p.task) for p in plan_dataset(extra, 0, spec))
    assert with_extra[("train", "locate")] == 8 and with_extra[("validation", "locate")] == 2
    assert with_extra[("test", "locate")] == 0
    assert with_extra[("train", "count_beeps")] == 8 and with_extra[("test", "count_beeps")] == 2
    # the test split is the one `tasks` alone would give, sample for sample
    test_of = lambda cfg: [p for p in plan_dataset(cfg, 0, spec) if p.split == "test"]  # noqa: E731
    assert test_of(extra) == test_of(plain)
    assert SyntheticConfig().train_only_tasks == [] and extra.all_tasks[-1] == "locate"


def test_train_only_families_are_checked():
    with pytest.raises(ValueError, match="train_only_tasks: localise also in data.synthetic.tasks"):
        SyntheticConfig(train_only_tasks=["localise"])
    with pytest.raises(ValueError, match="unknown synthetic task 'where_is_it'"):
        SyntheticConfig(train_only_tasks=["where_is_it"])
