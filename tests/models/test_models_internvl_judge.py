"""The paper's judge in-process: a shrunken InternVL3 in the released native layout, shown the frames."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

from avatar_core.models.internvl import (
    INTERNVL_CHAT_TEMPLATE,
    build_tiny_internvl,
    load_internvl,
    tiny_internvl_config,
    train_internvl_tokenizer,
)
from avatar_core.models.judge import JUDGE_INSTRUCTION, TransformersJudge, frame_messages, load_judge_model
from avatar_core.rewards.judge import Judge, parse_judge_scores

COMPLETIONS = ["<think>two beeps, the red box flashes</think><answer>B</answer>", "no tags at all"]
COLUMNS = {"facts": ['{"count": 2}', "{}"], "video": ["a.mp4", "b.mp4"], "question": ["How many beeps?"] * 2}


def test_native_layout_is_what_the_release_ships(tiny_internvl_dir) -> None:
    files = {p.name for p in tiny_internvl_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "chat_template.jinja",
    } <= files
    config = json.loads((tiny_internvl_dir / "config.json").read_text())
    assert config["model_type"] == "internvl" and config["architectures"] == [
        "InternVLForConditionalGeneration"
    ]
    assert "auto_map" not in config  # native: no remote code
    tokenizer_config = json.loads((tiny_internvl_dir / "tokenizer_config.json").read_text())
    named = json.dumps(tokenizer_config)
    assert all(token in named for token in ("<img>", "</img>", "<IMG_CONTEXT>"))
    assert (tiny_internvl_dir / "chat_template.jinja").read_text() == INTERNVL_CHAT_TEMPLATE

    saved = load_file(tiny_internvl_dir / "model.safetensors")
    prefixes = {name.split(".")[0] for name in saved}  # the released checkpoints' key layout
    assert prefixes == {"language_model", "vision_tower", "multi_modal_projector"}
    bundle = load_internvl(tiny_internvl_dir)
    original = build_tiny_internvl(seed=0).model.state_dict()  # the fixture's weights, rebuilt
    loaded = bundle.model.state_dict()
    assert loaded.keys() == original.keys() and len(saved) == len(original)
    for name, tensor in loaded.items():
        torch.testing.assert_close(tensor, original[name], msg=name)
    assert bundle.processor.image_seq_length == 4 and bundle.processor.tile_size == 56
    assert bundle.model.config.image_token_id == bundle.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")


class PrefillRecorder:
    """Records, for each generate call, the prompt ids and next-token logits of the prefill pass and
    the pixels the vision tower encoded (transformers encodes images before the prefill)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.prefills: list[dict] = []
        self.pixels: list[torch.Tensor] = []
        self._handles = [
            model.register_forward_hook(self._on_model, with_kwargs=True),
            model.model.vision_tower.register_forward_hook(self._on_vision, with_kwargs=True),
        ]

    def _on_model(self, module, args, kwargs, output) -> None:
        if kwargs["input_ids"].shape[1] > 1:
            self.prefills.append(
                {"input_ids": kwargs["input_ids"].clone(), "logits": output.logits[:, -1].clone()}
            )

    def _on_vision(self, module, args, kwargs, output) -> None:
        self.pixels.append((args[0] if args else kwargs["pixel_values"]).clone())

    def __enter__(self) -> PrefillRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()


def test_judge_is_shown_the_configured_frames_as_images(tiny_internvl_dir, judge_media) -> None:
    judge = TransformersJudge(
        str(tiny_internvl_dir), n_frames=6, max_new_tokens=3, media_root=str(judge_media)
    )
    assert isinstance(judge, Judge) and judge.family == "internvl"
    with PrefillRecorder(judge.bundle.model) as seen:
        judge.raw_answers(COMPLETIONS, **COLUMNS)
    prefill = seen.prefills[0]
    assert [list(p.shape) for p in seen.pixels] == [
        [2 * 6, 3, 56, 56]
    ]  # 6 frames per completion, one tile each
    tokenizer = judge.bundle.tokenizer
    start, context = (
        tokenizer.convert_tokens_to_ids("<img>"),
        tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
    )
    for row in prefill["input_ids"]:
        assert int((row == start).sum()) == 6 and int((row == context).sum()) == 6 * 4
    prompt = tokenizer.decode(prefill["input_ids"][0], skip_special_tokens=False)
    assert "Frame1: <img>" in prompt and "Frame6: <img>" in prompt and "Frame7" not in prompt
    assert JUDGE_INSTRUCTION in prompt and "Reasoning to rate: two beeps, the red box flashes" in prompt


def test_the_answer_depends_on_the_frames(tiny_internvl_dir, judge_media) -> None:
    judge = TransformersJudge(
        str(tiny_internvl_dir), n_frames=4, max_new_tokens=1, media_root=str(judge_media)
    )
    logits = {}
    for name, candidate in (("frames", judge), ("blank", judge.with_blank_frames())):
        with PrefillRecorder(judge.bundle.model) as seen:
            candidate.raw_answers(COMPLETIONS[:1], **{k: v[:1] for k, v in COLUMNS.items()})
        logits[name] = seen.prefills[0]["logits"]
        pixels = seen.pixels[0]
        per_channel_spread = pixels.amax(dim=(0, 2, 3)) - pixels.amin(dim=(0, 2, 3))  # [3]
        assert bool((per_channel_spread > 0).all()) == (name == "frames")  # black: one value per channel
    assert not torch.allclose(logits["frames"], logits["blank"], atol=1e-4)


def test_scores_are_the_parsed_answers_and_text_only_samples_get_no_images(
    tiny_internvl_dir, judge_media
) -> None:
    judge = TransformersJudge(
        str(tiny_internvl_dir), n_frames=2, max_new_tokens=8, media_root=str(judge_media), batch_size=2
    )
    columns = {"facts": ["{}"] * 3, "video": ["a.mp4", "", "b.mp4"], "question": ["q"] * 3}
    completions = ["<think>a</think><answer>A</answer>"] * 3
    answers = judge.raw_answers(completions, **columns)
    scores = judge.score(completions, **columns)
    assert scores == [parse_judge_scores(a) for a in answers]
    assert all(0.0 <= s <= 1.0 for s in scores)
    with PrefillRecorder(judge.bundle.model) as seen:
        judge.raw_answers(["x"], facts=["{}"], video=[""], question=["q"])
    assert seen.pixels == [] and len(seen.prefills) == 1  # no pixels for a sample without a clip


def test_batched_and_single_judging_agree(tiny_internvl_dir, judge_media) -> None:
    batched = TransformersJudge(
        str(tiny_internvl_dir), n_frames=2, max_new_tokens=6, media_root=str(judge_media), batch_size=2
    )
    single = TransformersJudge(
        batched.bundle, n_frames=2, max_new_tokens=6, media_root=str(judge_media), batch_size=1
    )
    assert batched.raw_answers(COMPLETIONS, **COLUMNS) == single.raw_answers(COMPLETIONS, **COLUMNS)


def test_frame_messages_follow_internvl_video_prompt() -> None:
    messages = frame_messages("Question: q", 2)
    assert messages[0] == {"role": "system", "content": JUDGE_INSTRUCTION}
    assert messages[1]["content"] == [
        {"type": "text", "text": "Frame1: "},
        {"type": "image"},
        {"type": "text", "text": "Frame2: "},
        {"type": "image"},
        {"type": "text", "text": "Question: q"},
    ]


def test_tiny_config_rejects_tiles_the_pixel_shuffle_cannot_split() -> None:
    tokenizer = train_internvl_tokenizer(["a b c"], 300)
    with pytest.raises(ValueError, match="multiple of 28"):
        tiny_internvl_config(tokenizer, tile_size=42)


def test_not_an_internvl_folder_is_named(tmp_path, tiny_internvl_dir) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(ValueError, match="is not the native 'internvl'"):
        load_internvl(tmp_path)
    broken = tmp_path / "no_processor"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"):
        (broken / name).write_bytes((tiny_internvl_dir / name).read_bytes())
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        load_internvl(broken)


REMOTE_CONFIG = """
from transformers import PretrainedConfig


class StandInChatConfig(PretrainedConfig):
    model_type = "internvl_chat"

    def __init__(self, image_size=56, **kwargs):
        self.force_image_size = image_size
        super().__init__(**kwargs)
"""

REMOTE_MODEL = '''
import json

import torch
from transformers import PreTrainedModel

from .configuration_standin import StandInChatConfig


class StandInChatModel(PreTrainedModel):
    """Stands in for the release's InternVLChatModel: checks chat()'s call contract, answers JSON."""

    config_class = StandInChatConfig

    def __init__(self, config):
        super().__init__(config)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.system_message = ""
        self.calls = []
        self.post_init()

    def chat(self, tokenizer, pixel_values, question, generation_config, num_patches_list=None):
        self.calls.append((None if pixel_values is None else tuple(pixel_values.shape), question, num_patches_list))
        frames = question.count("<image>")
        assert pixel_values is None or (frames == pixel_values.shape[0] == sum(num_patches_list))
        bright = 0.0 if pixel_values is None else float(pixel_values.mean() > -1.5)
        return json.dumps({"perception": 5 * bright, "reasoning": min(frames, 5)})
'''


def _remote_code_release(folder) -> None:
    """A checkpoint folder shaped like InternVL's original release: config with auto_map + code."""
    from transformers import AutoTokenizer

    (folder / "configuration_standin.py").write_text(textwrap.dedent(REMOTE_CONFIG))
    (folder / "modeling_standin.py").write_text(textwrap.dedent(REMOTE_MODEL))
    config = {
        "model_type": "internvl_chat",
        "architectures": ["StandInChatModel"],
        "auto_map": {
            "AutoConfig": "configuration_standin.StandInChatConfig",
            "AutoModel": "modeling_standin.StandInChatModel",
        },
        "image_size": 56,
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"weight": torch.zeros(1)}, folder / "model.safetensors")
    tokenizer = build_tiny_internvl().tokenizer
    tokenizer.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder) is not None


def test_remote_code_release_loads_only_with_the_opt_in(tmp_path, judge_media) -> None:
    folder = tmp_path / "InternVL3-standin"
    folder.mkdir()
    _remote_code_release(folder)
    with pytest.raises(ValueError, match="judge_trust_remote_code: true"):
        load_judge_model(str(folder))
    with pytest.raises(ValueError, match="runs code from its repository"):
        TransformersJudge(str(folder), media_root=str(judge_media))

    judge = TransformersJudge(
        str(folder), n_frames=3, max_new_tokens=8, media_root=str(judge_media), trust_remote_code=True
    )
    assert judge.family == "remote"
    scores = judge.score(
        ["<think>r</think>", "t"], facts=["{}", "{}"], video=["a.mp4", ""], question=["q", "q"]
    )
    model = judge.bundle.model
    assert model.system_message == JUDGE_INSTRUCTION
    (pixels, question, patches), (no_pixels, text_only, no_patches) = model.calls
    assert pixels == (3, 3, 56, 56) and patches == [1, 1, 1]
    assert question.startswith("Frame1: <image>\nFrame2: <image>\nFrame3: <image>\nQuestion: q")
    assert no_pixels is None and no_patches is None and "<image>" not in text_only
    assert scores == [pytest.approx((5 * 1.0 + 3) / 10), 0.0]
    blank = judge.with_blank_frames().score(
        ["<think>r</think>"], facts=["{}"], video=["a.mp4"], question=["q"]
    )
    assert blank == [pytest.approx(3 / 10)]  # black frames normalise far below -1.5 on average
