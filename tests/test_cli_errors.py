"""The `avatar` command on bad input: one `error: <key path or file:line>: <reason>` line per problem on
stderr, a non-zero exit (2 for the configuration, 1 otherwise), no traceback unless --debug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from avatar_core.cli import main

REPO = Path(__file__).resolve().parents[1]
PARAMS = str(REPO / "params.yaml")

# (--set values, the error lines expected); every case fails at load time, before any recipe runs
BAD_SETS = [
    (["sft.optim.lr=.inf"], ["error: sft.optim.lr: Input should be a finite number (got inf)"]),
    (["rl.s2.optim.lr=.nan"], ["error: rl.s2.optim.lr: Input should be a finite number (got nan)"]),
    (["rl.s1.rewards={format: .nan}"], ["error: rl.s1.rewards.format: Input should be a finite number (got nan)"]),
    (["seed=-1"], ["error: seed: Input should be greater than or equal to 0 (got -1)"]),
    (["seed=18446744073709551616"], ["error: seed: Input should be less than or equal to 4294967295 (got 18446744073709551616)"]),
    (["evaluate.checkpoints=[base, s4]"], ["error: evaluate.checkpoints: unknown checkpoint 's4'; valid names: base, sft, s1, s2, s3"]),
    (["evaluate.checkpoints=[sft, sft]"], ["error: evaluate.checkpoints: checkpoint sft listed more than once"]),
    (["evaluate.splits=[dev]"], ["error: evaluate.splits: unknown split 'dev'; valid names: train, validation, test"]),
    (["rl.s1.tasks=[count_cats]"], ["error: rl.s1.tasks: unknown task 'count_cats'; data.synthetic generates: count_flashes, av_match, count_beeps, localise"]),
    (["data.synthetic.tasks=[count_flashes]"], [
        "error: rl.s1.tasks: unknown task 'count_beeps'; data.synthetic generates: count_flashes",
        "error: rl.s2.tasks: unknown tasks 'count_beeps', 'av_match'; data.synthetic generates: count_flashes",
        "error: rl.s3.tasks: unknown tasks 'count_beeps', 'av_match', 'localise'; data.synthetic generates: count_flashes",
    ]),
    (["ablation.settings.binary.changes={tasks: [count_cats]}"], ["error: ablation.settings.binary: variant 'grpo' trains on unknown task 'count_cats'; data.synthetic generates: count_flashes, av_match, count_beeps, localise"]),
    (["data.media.max_pixels=100"], ["error: data.media.max_pixels: Input should be greater than or equal to 784 (got 100)"]),
    (["rl.s1.group_size=1000000000000"], ["error: rl.s1.group_size: Input should be less than or equal to 1024 (got 1000000000000)"]),
    (["data.source=jsonl"], ["error: data.path: required when data.source is 'jsonl'"]),
    (["k=[1"], ["error: k: --set value '[1' is not valid YAML (while parsing a flow sequence, expected ',' or ']', but got '<stream end>')"]),
    (["k=!!python/object/apply:os.system [ls]"], ["error: k: --set value '!!python/object/apply:os.system [ls]' is not valid YAML (could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system')"]),
    (["k=*undefined"], ["error: k: --set value '*undefined' is not valid YAML (found undefined alias 'undefined')"]),
    (["=3"], ["error: <empty key>: --set '=3': not a dotted key path such as rl.s1.steps"]),
    (["a..b=1"], ["error: a..b: --set 'a..b=1': not a dotted key path such as rl.s1.steps"]),
    (["rl.s1.steps"], ["error: override 'rl.s1.steps' must look like key.path=value"]),
    (["seed.x=1"], ["error: seed.x: --set 'seed.x=1': 'seed' is not a section"]),
    (["rl.s1.stepz=3"], ["error: rl.s1.stepz: unknown key (not a field of this section)"]),
    (["rl.defaults.optim.tower_lr_scale=.nan"], ["error: rl.defaults.optim.tower_lr_scale: Input should be a finite number (got nan) (inherited by rl.s1, rl.s2, rl.s3)"]),
    (["rl.defaults.group_size=1", "rl.s3.group_size=0"], [
        "error: rl.defaults.group_size: Input should be greater than or equal to 2 (got 1) (inherited by rl.s1, rl.s2)",
        "error: rl.s3.group_size: Input should be greater than or equal to 2 (got 0)",
    ]),
    (["rl.s2.max_prompts=1e20"], ["error: rl.s2.max_prompts: Input should be a valid integer, unable to parse string as an integer (got '1e20')"]),
    (["evaluate.benchmarks=[{name: omnibenh, root: x}]"], ["error: evaluate.benchmarks.0.name: unknown benchmark 'omnibenh'; valid names: avcounting, avodyssey, dailyomni, intentbench, mmvu, omnibench, videoholmes, worldsense"]),
    (["ablation.seeds=[1, 4294967296]"], ["error: ablation.seeds: [4294967296] outside 0..4294967295"]),
    (["ablation.eval_split=dev"], ["error: ablation.eval_split: unknown split 'dev'; valid names: train, validation, test"]),
    (["ablation.start=s4"], ["error: ablation.start: unknown start checkpoint 's4'; valid names: base, sft, s1, s2, s3"]),
    (["ablation.steps=.inf"], ["error: ablation.steps: Input should be a finite number (got inf)"]),
    (["ablation.variants.grpo={group_size: 1}"], ["error: ablation.variants.grpo: in setting 'binary' gives an invalid rl.s2 config: group_size: Input should be greater than or equal to 2"]),
]  # fmt: skip


def _run(argv: list[str], capsys) -> tuple[int, list[str], str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.startswith("error:")], err


@pytest.mark.parametrize(("sets", "expected"), BAD_SETS, ids=[" ".join(s) for s, _ in BAD_SETS])
def test_bad_values_give_one_line_each_and_exit_2(sets: list[str], expected: list[str], capsys) -> None:
    argv = ["sft", "--params", PARAMS, "--no-progress"] + [a for s in sets for a in ("--set", s)]
    code, lines, err = _run(argv, capsys)
    assert (code, lines) == (2, expected)
    assert "Traceback" not in err and len(err.strip().splitlines()) == len(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seed: 1\nrl:\n  s1: [unclosed\n", "{p}:4: not valid YAML (while parsing a flow sequence, expected ',' or ']', but got '<stream end>')"),
        ("- a\n- b\n", "{p}: the top level must be a mapping of sections"),
        (b"seed: \xff\n", "{p}: not UTF-8 text (byte 0xff at offset 6)"),
        ("a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
         "a: unknown key (not a field of this section)"),
    ],
)  # fmt: skip
def test_bad_params_files_name_file_and_line(tmp_path: Path, text, expected: str, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, lines, err = _run(["hints", "--params", str(params)], capsys)
    assert code == 2 and lines[0] == f"error: {expected.format(p=params)}"
    assert "Traceback" not in err


def test_ingest_checks_the_generator_can_place_the_cues(capsys) -> None:
    for n_frames, reason in [
        (3, "the synthetic tasks need n_frames >= 4 sampled frames, got 3"),
        (12, "a clip of 16 frames (fps 8 x 2.0s) is too short for 12 separate cues; need at least 23 frames"),
    ]:
        argv = ["ingest", "--params", PARAMS, "--set", f"data.media.n_frames={n_frames}"]
        code, lines, _ = _run(argv, capsys)
        assert (code, lines) == (2, [f"error: data.media.n_frames: {reason}"])


def test_missing_params_file(tmp_path: Path, capsys) -> None:
    code, lines, _ = _run(["sft", "--params", str(tmp_path / "nope.yaml")], capsys)
    assert (code, lines) == (2, [f"error: {tmp_path / 'nope.yaml'}: params file not found"])


def test_debug_shows_the_traceback_and_the_error_file_gets_the_lines(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    errors = tmp_path / "errors.txt"
    monkeypatch.setenv("AVATAR_ERROR_FILE", str(errors))
    code, lines, err = _run(["sft", "--params", PARAMS, "--set", "seed=-1", "--debug"], capsys)
    assert code == 2 and "Traceback (most recent call last)" in err and "ConfigError" in err
    assert (
        errors.read_text().splitlines()
        == lines
        == ["error: seed: Input should be greater than or equal to 0 (got -1)"]
    )


def _project(tmp_path: Path, **data: object) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"] = {k: str(tmp_path / v) for k, v in params["paths"].items()}
    params["data"].update(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_missing_inputs_of_a_stage_are_one_line(tmp_path: Path, capsys) -> None:
    params = _project(tmp_path, source="jsonl", path=str(tmp_path / "missing.jsonl"))
    code, lines, _ = _run(["ingest", "--params", str(params)], capsys)
    assert (code, lines) == (2, [f"error: data.path: {tmp_path / 'missing.jsonl'} does not exist"])
    code, lines, err = _run(["rl", "--stage", "s2", "--params", str(params), "--no-progress"], capsys)
    assert code == 1 and "Traceback" not in err
    assert lines == [
        f"error: {tmp_path / 'data/synthetic/dataset'}: no data set here; run `avatar ingest` first"
    ]


def test_user_data_checked_at_ingest_and_stage_start(tmp_path: Path, capsys) -> None:
    """An empty source and tasks the ingested data set lacks: errors before any training."""
    source = tmp_path / "records.jsonl"
    source.write_text("")
    params = _project(tmp_path, source="jsonl", path=str(source), media_root=str(tmp_path))
    code, lines, _ = _run(["ingest", "--params", str(params), "--no-progress"], capsys)
    assert (code, lines) == (1, [f"error: {source}: no records (the source is empty); nothing to train on"])

    rows = [
        {"id": f"q{i}", "task": "quiz", "question": f"Is {i} even?", "answer": "A" if i % 2 == 0 else "B",
         "choices": ["yes", "no"], "reasoning": "<think>.</think><answer>A</answer>"}
        for i in range(6)
    ]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["ingest", "--params", str(params), "--no-progress"]) == 0
    capsys.readouterr()
    code, lines, err = _run(["rl", "--stage", "s1", "--params", str(params), "--no-progress"], capsys)
    assert code == 1 and "Traceback" not in err
    assert lines == [
        f"error: rl.s1.tasks: task(s) count_beeps, count_flashes have no samples in split 'train' of "
        f"{tmp_path / 'data/synthetic'} (tasks present: quiz)"
    ]


def test_the_real_command_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "avatar_core.cli", "evaluate", "--params", PARAMS, "--set", "k=[1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: k: --set value '[1' is not valid YAML (while parsing a flow sequence, expected ',' or ']', "
        "but got '<stream end>')"
    ]
