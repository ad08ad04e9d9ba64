"""Evaluation controls: media blanked in part or whole, reported beside the accuracy with media."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avatar_core.config import AvatarConfig, ConfigError, config_from_dict
from avatar_core.data.ingest import ingest
from avatar_core.data.loader import control_clips
from avatar_core.data.media import Clip, decode_clip, resolve_media_path
from avatar_core.data.schema import SYSTEM_PROMPT, format_question
from avatar_core.evaluation.report import markdown_table
from avatar_core.evaluation.scoring import CONTROLS, greedy_answers, score_answers
from avatar_core.models.loading import build_tiny_policy, load_policy, save_policy
from avatar_core.recipes.common import load_samples, media_root, open_clips
from avatar_core.recipes.evaluate import run_evaluate

MAX_NEW = 10


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> AvatarConfig:
    root = tmp_path_factory.mktemp("controls")
    cfg = AvatarConfig.model_validate(
        {
            "paths": {
                "data_dir": str(root / "data"),
                "model_dir": str(root / "checkpoints/base"),
                "sft_dir": str(root / "checkpoints/sft"),
                "eval_dir": str(root / "results/eval"),
            },
            "data": {"synthetic": {"n_train": 1, "n_val": 0, "n_test": 8}},
            "evaluate": {
                "checkpoints": ["base", "sft"],
                "max_new_tokens": MAX_NEW,
                "batch_size": 4,
                "bootstrap_samples": 50,
            },
        }
    )
    ingest(cfg, progress=False)  # the generator's clips and their media store
    samples = load_samples(cfg, "test")
    corpus = [SYSTEM_PROMPT] + [format_question(s) + "<think>1</think><answer>A</answer>" for s in samples]
    save_policy(build_tiny_policy(cfg.model.tiny, corpus, seed=3), cfg.paths.model_dir)
    save_policy(build_tiny_policy(cfg.model.tiny, corpus, seed=4), Path(cfg.paths.sft_dir) / "model")
    return cfg


class ZeroedByHand:
    """Reference clip source: decodes each file (no media store, no loader), then zeros arrays
    with numpy directly."""

    def __init__(self, cfg: AvatarConfig, video: bool, audio: bool) -> None:
        self.cfg, self.video, self.audio = cfg, video, audio

    def get_many(self, samples):
        out = []
        for s in samples:
            clip = decode_clip(resolve_media_path(media_root(self.cfg), s.video), self.cfg.data.media)
            frames = clip.frames * 0 if self.video else clip.frames
            audio = clip.audio * 0 if self.audio else clip.audio
            out.append(
                Clip(
                    frames,
                    audio,
                    clip.sample_rate,
                    clip.audio_missing,
                    clip.duration_s,
                    clip.path,
                    clip.frame_times,
                )
            )
        return out


def test_control_views_blank_exactly_the_named_modality_from_one_read(world):
    sample = load_samples(world, "test")[0]
    with open_clips(world) as loader:
        real = loader.get(sample)
        assert real.frames.any() and real.audio.any()
        assert control_clips(loader, "media") is loader and control_clips(loader, None) is loader
        for name, (video, audio) in CONTROLS.items():
            clip = control_clips(loader, name).get(sample)
            assert clip.frames.shape == real.frames.shape and clip.audio.shape == real.audio.shape
            assert (not clip.frames.any()) if video else np.array_equal(clip.frames, real.frames)
            assert (not clip.audio.any()) if audio else np.array_equal(clip.audio, real.audio)
        assert real.frames.any() and real.audio.any()  # blanking never writes into the cached clip
        assert loader.stats.loads == 1  # the controls are made on the fly from the one cached read
        with pytest.raises(ValueError, match="unknown control 'blank_smell'; valid names: blank_media"):
            control_clips(loader, "blank_smell")


def test_every_control_is_reported_per_stage_set_and_family(world):
    results = run_evaluate(world, progress=False)
    samples = load_samples(world, "test")
    tasks = {s.task for s in samples}
    assert results["controls"] == ["blank_media", "blank_video", "blank_audio"]
    assert set(results["chance_per_task"]["test"]) == tasks
    for stage in ("base", "sft"):
        entry = results["stages"][stage]["test"]
        for run in ("media", *CONTROLS):
            assert entry[run]["n"] == len(samples) and set(entry[run]["per_task"]) == tasks
    # each control equals the same greedy evaluation on clips zeroed by hand
    bundle = load_policy(str(Path(world.paths.sft_dir) / "model"))
    for name, (video, audio) in CONTROLS.items():
        texts = greedy_answers(bundle, samples, ZeroedByHand(world, video, audio), MAX_NEW, 4, progress=False)
        expected = float(np.mean(score_answers(texts, samples)))
        assert results["stages"]["sft"]["test"][name]["accuracy"] == pytest.approx(expected)
    out = Path(world.paths.eval_dir)
    saved = json.loads((out / "results.json").read_text())
    assert saved["stages"]["base"]["test"]["blank_audio"] == results["stages"]["base"]["test"]["blank_audio"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test", "test_blank_media", "test_blank_video", "test_blank_audio"} <= set(metrics["sft"])
    assert all(f"test/{t}" in metrics["sft"] for t in tasks)
    report = (out / "results.md").read_text()
    assert "| stage | accuracy | 95% CI | blank media | blank video | blank audio |" in report
    assert all(f"| {t} | sft |" in report for t in tasks)
    assert (out / "accuracy_by_stage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_controls_run_only_for_the_named_checkpoints(world):
    cfg = world.model_copy(deep=True)
    cfg.evaluate.control_checkpoints = ["sft"]
    cfg.evaluate.controls = ["blank_audio"]
    results = run_evaluate(cfg, progress=False)
    assert "blank_audio" not in results["stages"]["base"]["test"]
    assert (
        "blank_audio" in results["stages"]["sft"]["test"]
        and "blank_video" not in results["stages"]["sft"]["test"]
    )
    table = markdown_table(results)
    assert "| base | " in table and "| blank audio |" in table and "blank video" not in table


@pytest.mark.parametrize(
    "evaluate, message",
    [
        ({"controls": ["blank_smell"]}, "evaluate.controls: unknown control 'blank_smell'"),
        ({"controls": ["blank_audio", "blank_audio"]}, "evaluate.controls: controls must not repeat"),
        (
            {"checkpoints": ["sft"], "control_checkpoints": ["s3"]},
            r"evaluate: control_checkpoints \['s3'\] are not in checkpoints",
        ),
    ],
)
def test_bad_control_settings_name_their_key(evaluate, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"evaluate": evaluate})
