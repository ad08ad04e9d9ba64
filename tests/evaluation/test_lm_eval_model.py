"""`lm_eval --model avatar` against `avatar evaluate` on one tiny checkpoint and a few synthetic test
samples, and loglikelihood against a direct teacher-forced forward pass of the whole sequence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lm_eval import simple_evaluate
from lm_eval.api.instance import Instance
from lm_eval.tasks import TaskManager

from avatar_core.config import AvatarConfig
from avatar_core.data.ingest import ingest
from avatar_core.data.media import MediaError
from avatar_core.data.schema import SYSTEM_PROMPT, Sample, format_question, render_messages
from avatar_core.evaluation.lm_eval_model import AvatarLM, continuation_scores
from avatar_core.evaluation.lm_eval_tasks import SYNTH_TASK, TASKS_DIR
from avatar_core.models.inputs import encode_prompts
from avatar_core.models.loading import build_tiny_policy, load_policy, save_policy
from avatar_core.recipes.common import load_samples, media_root, open_clips
from avatar_core.recipes.evaluate import export_lm_eval_jsonl, greedy_answers, run_evaluate, score_answers

pytestmark = pytest.mark.slow
MAX_NEW = 12
BATCH = 4
TEXT_ONLY = Sample(id="t0", task="text", question="No clip here.", answer="A", choices=["yes", "no"])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Six synthetic test samples (MP4 with audio; numeric and multiple choice), a saved tiny base
    checkpoint, and the config `avatar evaluate` runs with, all under one folder."""
    root = tmp_path_factory.mktemp("lm_eval_world")
    cfg = AvatarConfig.model_validate(
        {
            "paths": {
                "data_dir": str(root / "data"),
                "model_dir": str(root / "checkpoints/base"),
                "eval_dir": str(root / "results/eval"),
            },
            "data": {"synthetic": {"n_train": 1, "n_val": 0, "n_test": 6}},
            "evaluate": {
                "splits": ["test"],
                "checkpoints": ["base"],
                "max_new_tokens": MAX_NEW,
                "batch_size": BATCH,
                "bootstrap_samples": 50,
                "controls": [],
            },
        }
    )
    ingest(cfg, progress=False)  # the generator's clips and their media store
    samples = load_samples(cfg, "test")
    corpus = [SYSTEM_PROMPT] + [
        format_question(s) + "<think>count</think><answer>A</answer>" for s in samples
    ]
    save_policy(build_tiny_policy(cfg.model.tiny, corpus, seed=2), cfg.paths.model_dir)
    return {
        "root": root,
        "cfg": cfg,
        "media": media_root(cfg),
        "ckpt": Path(cfg.paths.model_dir),
        "samples": samples,
    }


def test_lm_eval_gives_the_answers_and_accuracy_of_avatar_evaluate(world, monkeypatch):
    cfg, samples = world["cfg"], world["samples"]
    results = run_evaluate(cfg, progress=False)  # also exports results/eval/lm_eval/test.jsonl
    bundle = load_policy(str(world["ckpt"]))
    ours = greedy_answers(bundle, samples, open_clips(cfg), MAX_NEW, BATCH, progress=False)
    our_scores = score_answers(ours, samples)
    evaluated = results["stages"]["base"]["test"]
    assert [e["output"] for e in evaluated["examples"]] == ours[:3]
    assert evaluated["media"]["accuracy"] == pytest.approx(sum(our_scores) / len(our_scores))
    assert len(set(ours)) >= 3  # clips lead to different answers (seed 2 gives 4 of 6): it can fail

    monkeypatch.chdir(world["root"])  # the task's data_files path is relative to the working directory
    out = simple_evaluate(
        model="avatar",
        model_args=f"pretrained={world['ckpt']},batch_size={BATCH}",
        tasks=[SYNTH_TASK],
        task_manager=TaskManager(include_path=TASKS_DIR, include_defaults=False),
        gen_kwargs={"max_gen_toks": MAX_NEW},
        log_samples=True,
        verbosity="ERROR",
    )
    logged = {row["doc"]["id"]: row for row in out["samples"][SYNTH_TASK]}
    assert [logged[s.id]["filtered_resps"][0] for s in samples] == ours
    assert [logged[s.id]["acc"] for s in samples] == our_scores
    assert out["results"][SYNTH_TASK]["acc,none"] == pytest.approx(sum(our_scores) / len(our_scores))


def _direct_loglikelihood(bundle, sample: Sample, clip, continuation: list[int]) -> tuple[float, bool]:
    """One prompt alone (no padding), continuation appended, one forward pass of the full model."""
    prompt = encode_prompts(bundle, [render_messages(sample)], [clip])
    cont = torch.tensor([continuation])  # [1, L]
    n_prompt, n_cont = prompt["input_ids"].shape[1], cont.shape[1]
    prompt["input_ids"] = torch.cat([prompt["input_ids"], cont], dim=1)  # [1, P + L]
    prompt["attention_mask"] = torch.ones_like(prompt["input_ids"])  # [1, P + L]
    with torch.no_grad():
        logits = bundle.model(**prompt).logits[0].float()  # [P + L, V]
    logp = torch.log_softmax(logits[n_prompt - 1 : n_prompt - 1 + n_cont], dim=-1)  # [L, V]
    target = cont[0]  # [L]
    return float(logp.gather(-1, target[:, None]).sum()), bool((logp.argmax(-1) == target).all())


def _request(world, sample: Sample, continuation: str, doc_id: int) -> Instance:
    media = {"visual": str((world["media"] / sample.video).resolve())} if sample.video else None
    args = (format_question(sample), continuation) + ((media,) if media else ())
    return Instance("loglikelihood", doc={}, arguments=args, idx=0, metadata=(SYNTH_TASK, doc_id, 1))


def test_loglikelihood_matches_a_direct_teacher_forced_pass(world):
    samples = world["samples"]
    model = AvatarLM(pretrained=str(world["ckpt"]), batch_size=BATCH)
    bundle = model.bundle
    clips = open_clips(world["cfg"])
    cases = [(samples[0], " B"), (samples[2], "<answer>2</answer>"), (samples[3], "C"), (TEXT_ONLY, "A")]
    got = model.loglikelihood([_request(world, s, c, k) for k, (s, c) in enumerate(cases)], disable_tqdm=True)
    tokenize = bundle.tokenizer
    want = [
        _direct_loglikelihood(bundle, s, clips.get(s), tokenize(c, add_special_tokens=False)["input_ids"])
        for s, c in cases
    ]
    for (ll, greedy), (want_ll, want_greedy) in zip(got, want, strict=True):
        assert ll == pytest.approx(want_ll, rel=1e-4, abs=1e-4)
        assert greedy == want_greedy
    assert all(ll < 0 for ll, _ in got) and len({round(ll, 3) for ll, _ in got}) == len(got)


def test_greedy_flag_on_the_model_s_own_greedy_tokens(world):
    """Token level (a byte-level BPE does not always re-encode decoded text to the same ids)."""
    samples = world["samples"]
    bundle = load_policy(str(world["ckpt"]))
    clips = open_clips(world["cfg"])
    rows = [samples[0], samples[3]]
    inputs = encode_prompts(bundle, [render_messages(s) for s in rows], clips.get_many(rows))
    prompt_len = inputs["input_ids"].shape[1]
    with torch.no_grad():
        greedy = bundle.model.generate(**inputs, max_new_tokens=3, do_sample=False)[:, prompt_len:]  # [2, 3]
    own = greedy[0].tolist()
    altered = greedy[1].tolist()
    altered[1] = (altered[1] + 1) % len(bundle.tokenizer)
    got = continuation_scores(bundle, inputs, [own, altered[:2]])
    assert [g for _, g in got] == [True, False]
    for (ll, _), sample, ids in zip(got, rows, [own, altered[:2]], strict=True):
        assert ll == pytest.approx(_direct_loglikelihood(bundle, sample, clips.get(sample), ids)[0], abs=1e-4)


def test_empty_continuation_and_rolling_loglikelihood_are_refused(world):
    model = AvatarLM(pretrained=str(world["ckpt"]))
    request = Instance("loglikelihood", doc={}, arguments=("Q?", ""), idx=0, metadata=(SYNTH_TASK, 7, 1))
    with pytest.raises(ValueError, match=r"request 0 \(task avatar_synth, doc 7\): empty continuation"):
        model.loglikelihood([request])
    with pytest.raises(NotImplementedError, match="rolling log-likelihoods"):
        model.loglikelihood_rolling([request])


def test_missing_clip_names_the_file(world, tmp_path):
    model = AvatarLM(pretrained=str(world["ckpt"]))
    missing = str(tmp_path / "nowhere.mp4")
    request = Instance(
        "generate_until",
        doc={},
        arguments=("Q?", {"until": [], "max_gen_toks": 2}, {"visual": missing}),
        idx=0,
        metadata=(SYNTH_TASK, 0, 1),
    )
    with pytest.raises(MediaError, match="nowhere.mp4"):
        model.generate_until([request], disable_tqdm=True)


def test_the_documented_command_line_runs_the_task(world, tmp_path):
    """`python -m avatar_core.evaluation.lm_eval_tasks --model avatar ...` from the data's directory."""
    samples = world["samples"]
    bundle = load_policy(str(world["ckpt"]))
    ours = greedy_answers(bundle, samples, open_clips(world["cfg"]), 4, BATCH, progress=False)
    export_lm_eval_jsonl(samples, world["root"] / "results/eval/lm_eval/test.jsonl", world["media"])
    command = [sys.executable, "-m", "avatar_core.evaluation.lm_eval_tasks", "--model", "avatar"]
    command += [
        "--model_args",
        f"pretrained={world['ckpt']}",
        "--batch_size",
        str(BATCH),
        "--tasks",
        SYNTH_TASK,
    ]
    command += ["--gen_kwargs", "max_gen_toks=4", "--output_path", str(tmp_path / "out"), "--log_samples"]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=world["root"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    logged = [
        json.loads(line)
        for p in (tmp_path / "out").rglob("samples_avatar_synth_*.jsonl")
        for line in p.open()
    ]
    by_id = {row["doc"]["id"]: row["filtered_resps"][0] for row in logged}
    assert [by_id[s.id] for s in samples] == ours


def test_params_yaml_sets_the_media_and_model_args_override_it(world, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  media:\n    n_frames: 2\n    max_pixels: 6272\n")
    model = AvatarLM(pretrained=str(world["ckpt"]), params=str(params), max_pixels=3136)
    assert (model.media.n_frames, model.media.max_pixels) == (2, 3136)
    clip = model.clip(str((world["media"] / world["samples"][0].video).resolve()))
    assert clip.frames.shape == (2, 56, 56, 3)
