"""Feed the `avatar` command every class of bad input and print what each case ends in.

    python scripts/bad_input_campaign.py [--out results.json] [--keep DIR]

Each case runs the real command line (`python -m avatar_core.cli ...`, a fresh process) in a
throwaway project and is classified from what the user sees and what lands on disk:
  rejected    an ingest record written to rejected.jsonl with a reason, the other records kept
  clear error a non-zero exit with `error: ...` lines and no traceback
  recovered   the command succeeded and the result is right (a skipped step is logged, a stale
              lock was taken over, a cut log line was dropped)
  TRACEBACK   a Python traceback reached the user
  SILENT      the command succeeded but should not have, or the result is wrong
The last line counts tracebacks and silent-wrong outcomes; the goal is 0 and 0. Kills at every
point of a checkpoint write, a full disk and a killed Prefect worker are the fault suite's:
`pytest tests/faults -v`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MC = {"task": "quiz", "question": "Is it red?", "answer": "A", "choices": ["yes", "no"]}
NUM = {"task": "count", "question": "How many?", "answer_type": "numeric"}


@dataclass
class Case:
    group: str
    name: str
    outcome: str = ""
    detail: str = ""


def avatar(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None, timeout: float = 900):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(extra_env or {})}
    cmd = [sys.executable, "-m", "avatar_core.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def judge_error(done, code: int | None = None) -> tuple[str, str]:
    """Classify a run that should fail: clear error, traceback, or silent (it succeeded, or it got
    past the check that should have stopped it: `code` 2 means the configuration must be refused)."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    if "Traceback (most recent call last)" in done.stderr:
        return "TRACEBACK", done.stderr.strip().splitlines()[-1][:160]
    if done.returncode == 0 or (code is not None and done.returncode != code):
        return "SILENT", f"exit {done.returncode}: " + " | ".join(lines)[:200]
    if not lines:
        return "TRACEBACK", f"exit {done.returncode} without an error line"
    return "clear error", f"exit {done.returncode}: " + " | ".join(lines)[:300]


def write_params(project: Path, **changes: object) -> Path:
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["paths"] = {k: str(project / v) for k, v in data["paths"].items()}
    data["num_threads"] = 1
    data["data"].update(num_workers=0)
    data["data"]["synthetic"].update(n_train=8, n_val=0, n_test=4)
    data["sft"].update(max_steps=4, batch_size=4, save_every=2)
    if data["sft"].get("warmup", {}).get("steps"):
        data["sft"]["warmup"]["steps"] = 2  # the warm-up phase runs too, briefly
    for stage in ("s1", "s2", "s3"):  # a stage section lists what it changes from rl.defaults
        data["rl"][stage] = data["rl"].get(stage) or {}
        data["rl"][stage].update(steps=2, prompts_per_step=2, group_size=2, save_every=1)
        data["rl"][stage].setdefault("generation", {})["max_new_tokens"] = 8
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------- ingest records


def record_cases(work: Path) -> list[Case]:
    """One ingest of a JSONL file holding two good records and every bad one; each bad record
    must be in rejected.jsonl with a reason, the good ones in the data set."""
    from avatar_core.data.mp4 import write_mp4

    root = work / "media"
    (root / "clips").mkdir(parents=True)
    import numpy as np

    write_mp4(root / "clips" / "ok.mp4", np.zeros((8, 56, 56, 3), np.uint8), None, fps=8, sample_rate=16000)
    os.symlink("loop", root / "loop")
    os.symlink("/etc", root / "outward")
    (work / "outside.mp4").write_bytes((root / "clips" / "ok.mp4").read_bytes())
    line = lambda **f: json.dumps(f).encode()  # noqa: E731
    bad = {
        "OS path: symlink loop": line(id="r1", video="loop", **MC),
        "OS path: NUL byte": line(id="r2", video="clips/a\x00b.mp4", **MC),
        "OS path: 300-byte file name": line(id="r3", video="x" * 300 + ".mp4", **MC),
        "OS path: 5,000-byte path": line(id="r4", video=("d" * 250 + "/") * 20 + "f.mp4", **MC),
        "OS path: absolute": line(id="r5", video="/etc/passwd", **MC),
        "OS path: ../ escape": line(id="r6", video="../outside.mp4", **MC),
        "OS path: symlink leaving the root": line(id="r7", video="outward/passwd", **MC),
        "line: not UTF-8": b'{"id": "r8", "task": "t", "question": "\xff", "answer": "A", "choices": ["x", "y"]}',
        "line: JSON nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
        "line: 5,000-digit integer": b'{"id": "r10", "n": ' + b"9" * 5000 + b"}",
        "line: JSON array, not object": b"[1, 2]",
        "line: truncated JSON": b'{"id": "r12", "task": ',
        "answer: 'nan'": line(id="r13", answer="nan", **NUM),
        "answer: 'inf'": line(id="r14", answer="inf", **NUM),
        "answer: '1e999'": line(id="r15", answer="1e999", **NUM),
        "answer: JSON 1e999": b'{"id": "r16", "task": "c", "question": "q", "answer_type": "numeric", "answer": 1e999}',
        "answer: JSON NaN": b'{"id": "r17", "task": "c", "question": "q", "answer_type": "numeric", "answer": NaN}',
        "choices: 11 options": line(
            id="r18", task="t", question="q", answer="A", choices=list("abcdefghijk")
        ),
        "question: 4,001 characters": line(
            id="r19", task="t", question="q" * 4001, answer="A", choices=["x", "y"]
        ),
        "option: 5,000 characters": line(
            id="r20", task="t", question="q", answer="A", choices=["x", "y" * 5000]
        ),
        "extra_media: ../ escape": line(id="r21", extra_media=["../outside.mp4"], **MC),
        "extra_media: absolute": line(id="r22", extra_media=["/etc/passwd"], **MC),
        "extra_media: missing file": line(id="r23", extra_media=["clips/gone.wav"], **MC),
        "extra_media: symlink loop": line(id="r24", extra_media=["loop"], **MC),
    }
    good = [line(id="g1", video="clips/ok.mp4", **MC), line(id="g2", answer="1e3", **NUM)]
    source = work / "records.jsonl"
    source.write_bytes(b"\n".join(good + list(bad.values())) + b"\n")
    params = write_params(
        work, **{"data.source": "jsonl", "data.path": str(source), "data.media_root": str(root)}
    )
    done = avatar(["ingest", "--params", str(params), "--no-progress"], work)
    rejected_file = work / "data" / "synthetic" / "rejected.jsonl"
    rejected = {}
    if rejected_file.is_file():
        rejected = {r["line"]: r for r in map(json.loads, rejected_file.read_text().splitlines())}
    report = (
        json.loads((work / "data" / "synthetic" / "ingest.json").read_text()) if done.returncode == 0 else {}
    )
    cases = []
    for number, name in enumerate(bad, start=len(good) + 1):
        case = Case("ingest record", name)
        if "Traceback" in done.stderr or done.returncode != 0:
            case.outcome, case.detail = judge_error(done)
        elif number in rejected and rejected[number]["reason"]:
            entry = rejected[number]
            case.outcome = "rejected"
            reason = (
                entry["reason"]
                if len(entry["reason"]) < 150
                else f"{entry['reason'][:45]}...{entry['reason'][-100:]}"
            )
            case.detail = f"line {number}, field {entry['field'] or '-'}: {reason}"
        else:
            case.outcome, case.detail = "SILENT", "accepted"
        cases.append(case)
    kept = Case("ingest record", "good records beside the bad ones")
    kept.outcome = "recovered" if report.get("good", {}).get("train") == len(good) else "SILENT"
    kept.detail = (
        f"{report.get('total_good')} kept, {report.get('total_rejected')} rejected, exit {done.returncode}"
    )
    return [*cases, kept]


def dataset_cases(work: Path) -> list[Case]:
    (work / "folder").mkdir(parents=True)
    (work / "empty.jsonl").write_text("\n")
    (work / "bad.jsonl").write_text('{"id": "x"}\n[1]\n')
    inputs = {
        "empty JSONL": {"data.path": str(work / "empty.jsonl")},
        "every record rejected": {"data.path": str(work / "bad.jsonl")},
        "data.path missing": {"data.path": str(work / "missing.jsonl")},
        "folder without split files": {"data.path": str(work / "folder")},
        "data.media_root missing": {
            "data.path": str(work / "bad.jsonl"),
            "data.media_root": str(work / "nope"),
        },
    }
    cases = []
    for name, changes in inputs.items():
        project = work / name.replace(" ", "_")
        project.mkdir()
        params = write_params(project, **{"data.source": "jsonl", **changes})
        cases.append(
            Case("data set", name, *judge_error(avatar(["ingest", "--params", str(params)], project)))
        )
    return cases


# --------------------------------------------------------------------------- configuration


CONFIG_SETS = {
    "sft.optim.lr: .inf": ["sft.optim.lr=.inf"],
    "sft.optim.lr: .nan": ["sft.optim.lr=.nan"],
    "rl.s1.optim.lr: -.inf": ["rl.s1.optim.lr=-.inf"],
    "reward weight .nan": ["rl.s2.rewards={format: .nan}"],
    "seed -1": ["seed=-1"],
    "seed 2**32": ["seed=4294967296"],
    "seed 2**64": ["seed=18446744073709551616"],
    "evaluate.checkpoints [s4]": ["evaluate.checkpoints=[base, s4]"],
    "evaluate.checkpoints repeated": ["evaluate.checkpoints=[sft, sft]"],
    "evaluate.splits [dev]": ["evaluate.splits=[dev]"],
    "rl.s1.tasks unknown": ["rl.s1.tasks=[count_cats]"],
    "sft.tasks unknown": ["sft.tasks=[count_cats]"],
    "data.synthetic.tasks unknown": ["data.synthetic.tasks=[count_cats]"],
    "data.media.max_pixels 100 (< one patch)": ["data.media.max_pixels=100"],
    "rl.s1.group_size 1e12": ["rl.s1.group_size=1000000000000"],
    "data.source jsonl, no data.path": ["data.source=jsonl"],
    "--set k=[1": ["k=[1"],
    "--set YAML tag !!python/object": ["k=!!python/object/apply:os.system [ls]"],
    "--set undefined alias": ["k=*nowhere"],
    "--set =3 (no key)": ["=3"],
    "--set a..b=1": ["a..b=1"],
    "--set without =": ["rl.s1.steps"],
    "--set seed.x=1 (not a section)": ["seed.x=1"],
    "--set unknown key": ["rl.s1.stepz=3"],
    "rl.defaults.optim.lr: .inf": ["rl.defaults.optim.lr=.inf"],
    "rl.defaults.max_prompts 0": ["rl.defaults.max_prompts=0"],
    "ablation.seeds [2**32]": ["ablation.seeds=[4294967296]"],
    "ablation.eval_split [dev]": ["ablation.eval_split=dev"],
    "ablation variant with an unknown key": ["ablation.variants.grpo={objective.nme: grpo}"],
    "ablation setting with an unknown task": ["ablation.settings.binary.changes={tasks: [count_cats]}"],
}
PARAMS_FILES = {
    "invalid YAML": b"seed: 1\nrl:\n  s1: [unclosed\n",
    "not UTF-8": b"seed: \xff\n",
    "top level is a list": b"- a\n- b\n",
    "NUL in paths.data_dir": b'paths:\n  data_dir: "a\\0b"\n',
    "aliases expanding to 729 references": b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
}


def config_cases(work: Path) -> list[Case]:
    cases = []
    for name, sets in CONFIG_SETS.items():
        args = ["sft", "--params", str(REPO / "params.yaml")] + [a for s in sets for a in ("--set", s)]
        group = "--set syntax" if name.startswith("--set") else "config value"
        cases.append(Case(group, name, *judge_error(avatar(args, work), code=2)))
    ingest = ["ingest", "--params", str(REPO / "params.yaml"), "--set", "data.media.n_frames=3"]
    cases.append(
        Case("config value", "data.media.n_frames 3 (ingest)", *judge_error(avatar(ingest, work), 2))
    )
    for name, text in PARAMS_FILES.items():
        path = work / f"{len(cases)}.yaml"
        path.write_bytes(text)
        cases.append(
            Case("params file", name, *judge_error(avatar(["hints", "--params", str(path)], work), 2))
        )
    cases.append(
        Case("params file", "missing", *judge_error(avatar(["sft", "--params", "nope.yaml"], work), 2))
    )
    return cases


# --------------------------------------------------------------------------- stages on a small project


def stage_cases(work: Path) -> list[Case]:
    base = work / "project"
    base.mkdir()
    params = write_params(base)
    for command in (["ingest"], ["sft"]):
        done = avatar([*command, "--params", str(params), "--no-progress"], base)
        if done.returncode:
            raise SystemExit(f"could not build the project: {done.stderr[-2000:]}")
    cases: list[Case] = []

    def on_copy(group: str, name: str, prepare: Callable[[Path], object], args: list[str], check) -> None:
        project = work / f"case{len(cases)}"
        shutil.copytree(base, project, symlinks=True)
        p = write_params(project)
        extra = prepare(project) or {}
        done = avatar([*args, "--params", str(p), "--no-progress"], project, extra_env=extra)
        cases.append(Case(group, name, *check(project, done)))

    def recovered_if(predicate: Callable[[Path], str]):
        def check(project: Path, done):
            if "Traceback" in done.stderr or done.returncode:
                return judge_error(done) if done.returncode else ("TRACEBACK", done.stderr[-160:])
            problem = predicate(project)
            return ("SILENT", problem) if problem else ("recovered", "exit 0; " + describe(project))

        return check

    def error(project: Path, done):
        return judge_error(done)

    def describe(project: Path) -> str:
        log = project / "runs"
        steps = []
        for stage in ("sft", "s1"):
            f = log / stage / "log.jsonl"
            if f.is_file():
                steps = [json.loads(x) for x in f.read_text().splitlines()]
        skipped = [r["step"] for r in steps if r.get("skipped")]
        return f"{len(steps)} steps logged, skipped {skipped or 'none'}"

    def strict_metrics(stage: str, skipped: list[int]):
        def predicate(project: Path) -> str:
            metrics = project / "results" / "metrics" / stage / "metrics.json"

            def refuse(token):
                raise ValueError(token)

            try:
                json.loads(metrics.read_text(), parse_constant=refuse)
            except ValueError as err:
                return f"{metrics} is not strict JSON ({err})"
            run = "sft" if stage == "sft" else stage
            log = [json.loads(x) for x in (project / "runs" / run / "log.jsonl").read_text().splitlines()]
            got = [r["step"] for r in log if r.get("skipped")]
            return "" if got == skipped else f"skipped steps {got}, expected {skipped}"

        return predicate

    def fresh_sft(project: Path) -> None:
        for folder in ("checkpoints/sft", "runs/sft", "results/metrics/sft"):
            shutil.rmtree(project / folder, ignore_errors=True)

    def arm(spec: str):
        def prepare(project: Path):
            fresh_sft(project)
            return {"AVATAR_FAULTS": spec}

        return prepare

    def jsonl_data(project: Path) -> None:
        (project / "quiz.jsonl").write_text(json.dumps({"id": "q1", **MC}) + "\n")
        write_params(project, **{"data.source": "jsonl", "data.path": str(project / "quiz.jsonl")})
        avatar(["ingest", "--params", str(project / "params.yaml"), "--no-progress"], project)
        write_params(project, **{"data.source": "jsonl", "data.path": str(project / "quiz.jsonl")})

    def hints_line(raw: bytes):
        def prepare(project: Path) -> None:
            (project / "data" / "hints").mkdir(parents=True, exist_ok=True)
            (project / "data" / "hints" / "hints.jsonl").write_bytes(raw + b"\n")

        return prepare

    def inf_weight(project: Path) -> None:
        from safetensors.torch import load_file, save_file

        fresh_sft(project)
        path = project / "checkpoints" / "base" / "model.safetensors"
        weights = load_file(str(path))
        key = next(k for k in sorted(weights) if "norm" in k)
        weights[key][0] = float("inf")
        save_file(weights, str(path), metadata={"format": "pt"})

    on_copy(
        "stage input",
        "rl.s1.tasks absent from ingested user data",
        jsonl_data,
        ["rl", "--stage", "s1"],
        error,
    )
    on_copy("stage input", "rl before its sft checkpoint exists", fresh_sft, ["rl", "--stage", "s1"], error)
    on_copy(
        "stage input",
        "hints.jsonl line not UTF-8",
        hints_line(b'{"id": "\xff"}'),
        ["rl", "--stage", "s1"],
        error,
    )
    on_copy(
        "stage input",
        "hints.jsonl line nested 100,000 deep",
        hints_line(b"[" * 100_000),
        ["rl", "--stage", "s1"],
        error,
    )
    on_copy(
        "training",
        "NaN loss at step 2 (transient)",
        arm("sft.loss#2=nan"),
        ["sft"],
        recovered_if(strict_metrics("sft", [2])),
    )
    on_copy("training", "NaN loss from step 2 on", arm("sft.loss#2-=nan"), ["sft"], error)
    on_copy("training", "infinite weight in the base checkpoint", inf_weight, ["sft"], error)
    cases.extend(lock_cases(base, work))
    return cases


def lock_cases(base: Path, work: Path) -> list[Case]:
    """A second writer while the first holds runs/s1 (stopped with SIGSTOP), then the first killed."""
    project = work / "locks"
    shutil.copytree(base, project, symlinks=True)
    params = write_params(project)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "avatar_core.cli",
        "rl",
        "--stage",
        "s1",
        "--params",
        str(params),
        "--no-progress",
    ]
    first = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = project / "runs" / "s1.lock"
    deadline = time.monotonic() + 600
    while not (lock.is_file() and str(first.pid) in lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGSTOP)
    second = Case(
        "concurrency", "second writer of runs/s1 while the first runs", *judge_error(avatar(cmd[3:], project))
    )
    if second.outcome == "clear error" and f"process {first.pid}" not in second.detail:
        second.outcome = "SILENT"
    first.kill()
    first.wait()
    done = avatar(cmd[3:], project)
    stale = Case("concurrency", "stale lock of a writer killed with SIGKILL")
    if done.returncode == 0 and "taking over the lock" in done.stderr:
        stale.outcome, stale.detail = "recovered", "taken over and logged; the stage resumed and finished"
    else:
        stale.outcome, stale.detail = judge_error(done) if done.returncode else ("SILENT", done.stderr[-200:])
    return [second, stale]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the cases as JSON here")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="avatar-bad-input-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    cases: list[Case] = []
    for name, run in [
        ("records", record_cases),
        ("data", dataset_cases),
        ("config", config_cases),
        ("stages", stage_cases),
    ]:
        folder = work / name
        folder.mkdir()
        cases += run(folder)
    print("| class | case | outcome | what the user gets |")
    print("|---|---|---|---|")
    for c in cases:
        print(f"| {c.group} | {c.name} | {c.outcome} | {c.detail.replace('|', '/')} |")
    counts = {
        o: sum(c.outcome == o for c in cases)
        for o in ("rejected", "clear error", "recovered", "TRACEBACK", "SILENT")
    }
    print(
        f"\n{len(cases)} cases: {counts['rejected']} rejected with a reason, {counts['clear error']} clear errors, "
        f"{counts['recovered']} recovered; {counts['TRACEBACK']} tracebacks, {counts['SILENT']} silent-wrong "
        f"({time.perf_counter() - start:.0f} s)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps([c.__dict__ for c in cases], indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if counts["TRACEBACK"] or counts["SILENT"] else 0


if __name__ == "__main__":
    sys.exit(main())
