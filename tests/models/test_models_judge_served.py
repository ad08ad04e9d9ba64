"""The served judge: a real OpenAI-compatible server on loopback, retries, timeouts, loud failures.

The server is `python -m avatar_core.models.judge_server` on the shrunken InternVL3 (transformers
serve cannot build InternVL's processor without torchvision; see that module's docstring).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from avatar_core.models.judge import TransformersJudge
from avatar_core.models.judge_client import (
    JudgeResponseError,
    JudgeUnavailableError,
    ServedJudge,
    openai_messages,
    png_data_url,
)
from avatar_core.models.judge_server import decode_data_url
from avatar_core.rewards.functions import make_judge_reward
from avatar_core.rewards.judge_cache import JudgeCache

KEY_ENV = "AVATAR_TEST_JUDGE_KEY"
KEY = "test-token-not-a-secret"
COMPLETIONS = [
    "<think>two beeps, the red box flashes</think><answer>B</answer>",
    "no tags",
    "<think>3</think>",
]
COLUMNS = {
    "facts": ['{"count": 2}', "{}", "{}"],
    "video": ["a.mp4", "", "b.mp4"],
    "question": ["How many?"] * 3,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def judge_server(tiny_internvl_dir):
    """The judge server on a free loopback port, requiring a bearer token; yields its base URL."""
    port = free_port()
    env = {**os.environ, KEY_ENV: KEY, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "avatar_core.models.judge_server", "--model", str(tiny_internvl_dir)]
    command += ["--served-model-name", "tiny-internvl3", "--port", str(port), "--api-key-env", KEY_ENV]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"judge server exited: {process.stdout.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError("judge server did not come up within 120 s")
    yield url + "/v1"
    process.terminate()
    process.wait(timeout=30)


def served(url: str, media: str, **kwargs) -> ServedJudge:
    options = {"n_frames": 4, "max_new_tokens": 12, "max_pixels": 56 * 56, "api_key_env": KEY_ENV} | kwargs
    return ServedJudge(url, "tiny-internvl3", media_root=media, **options)


def test_served_judge_answers_like_the_in_process_judge(
    judge_server, tiny_internvl_dir, judge_media, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, KEY)
    remote = served(judge_server, str(judge_media), concurrency=3)
    local = TransformersJudge(
        str(tiny_internvl_dir), n_frames=4, max_new_tokens=12, media_root=str(judge_media)
    )
    remote_answers = remote.raw_answers(COMPLETIONS, **COLUMNS)
    assert remote_answers == local.raw_answers(COMPLETIONS, **COLUMNS)  # same pixels, same greedy model
    assert remote.score(COMPLETIONS, **COLUMNS) == local.score(COMPLETIONS, **COLUMNS)
    blank = remote.with_blank_frames().raw_answers(COMPLETIONS[:1], **{k: v[:1] for k, v in COLUMNS.items()})
    assert blank == local.with_blank_frames().raw_answers(
        COMPLETIONS[:1], **{k: v[:1] for k, v in COLUMNS.items()}
    )


def test_request_carries_every_frame_as_a_data_url(judge_media) -> None:
    judge = served("http://127.0.0.1:9/v1", str(judge_media), n_frames=5)
    body = judge.request_body("<think>r</think>", '{"count": 2}', "q", "a.mp4")
    assert body["model"] == "tiny-internvl3" and body["temperature"] == 0.0 and body["max_tokens"] == 12
    parts = body["messages"][1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(urls) == 5 and all(u.startswith("data:image/png;base64,") for u in urls)
    frames = judge.frames.frames("a.mp4")
    assert all((decode_data_url(u, "x") == f).all() for u, f in zip(urls, frames, strict=True))  # lossless
    assert [p["text"] for p in parts if p["type"] == "text"][:2] == ["Frame1: ", "Frame2: "]
    assert "Reference facts about the clip" in parts[-1]["text"]


def test_missing_or_wrong_token_is_refused_with_the_variable_named(judge_server, judge_media, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(JudgeResponseError, match=f"HTTP 401.*set {KEY_ENV} in the environment"):
        served(judge_server, str(judge_media)).score(["c"], facts=["{}"], video=[""], question=["q"])
    monkeypatch.setenv(KEY_ENV, "wrong")
    with pytest.raises(JudgeResponseError, match="HTTP 401"):
        served(judge_server, str(judge_media)).score(["c"], facts=["{}"], video=[""], question=["q"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "other", "messages": [{"role": "user", "content": "x"}]}, 404, "not served here"),
        ({"messages": []}, 400, "non-empty list"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": True}, 400, "streaming"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "'max_tokens' must be"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                    }
                ]
            },
            400,
            r"messages\[0\].content\[0\]: only base64 data URLs",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                        ],
                    }
                ]
            },
            400,
            "does not decode",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, 400, r"messages\[0\]: needs a role"),
    ],
)
def test_bad_requests_get_openai_style_errors(judge_server, body, status, message) -> None:
    response = httpx.post(
        f"{judge_server}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert re.search(message, error["message"])


def test_models_endpoint_lists_the_served_name(judge_server) -> None:
    reply = httpx.get(f"{judge_server}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
    assert [m["id"] for m in reply["data"]] == ["tiny-internvl3"]


def test_unreachable_judge_fails_the_step_after_the_retries(judge_media) -> None:
    port = free_port()  # nothing listens there any more
    judge = served(f"http://127.0.0.1:{port}/v1", str(judge_media), retries=2, backoff_s=0.01, timeout_s=2)
    reward = make_judge_reward(judge, cache=JudgeCache(judge.identity))
    started = time.monotonic()
    with pytest.raises(
        JudgeUnavailableError, match=rf"127.0.0.1:{port}/v1/chat/completions did not answer after 3"
    ):
        reward(COMPLETIONS, id=["p1", "p2", "p3"], **COLUMNS)  # never a silent 0
    assert time.monotonic() - started >= 0.03  # two backoffs of 0.01 s and 0.02 s


class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers POSTs from a script of (status, body or 'hang'); records what it was sent."""

    script: list = []
    received: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers["Content-Length"])
        type(self).received.append((self.headers.get("Authorization"), json.loads(self.rfile.read(length))))
        status, body = type(self).script.pop(0) if type(self).script else (200, "{}")
        if body == "hang":
            time.sleep(3)
            return
        payload = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def scripted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
    ScriptedHandler.script, ScriptedHandler.received = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", ScriptedHandler
    server.shutdown()
    server.server_close()


def completion(text) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def test_transient_errors_and_timeouts_are_retried(scripted, monkeypatch) -> None:
    url, handler = scripted
    monkeypatch.setenv(KEY_ENV, KEY)
    handler.script = [
        (503, {"error": "warming up"}),
        (200, "hang"),
        (200, completion('{"perception": 5, "reasoning": 3}')),
    ]
    judge = served(url, None, retries=2, backoff_s=0.01, timeout_s=0.5)
    assert judge.score(["c"], facts=["{}"], video=[""], question=["q"]) == [pytest.approx(0.8)]
    assert len(handler.received) == 3 and handler.received[0][0] == f"Bearer {KEY}"
    handler.script = [(503, "down")] * 2
    judge = served(url, None, retries=1, backoff_s=0.0)
    with pytest.raises(JudgeUnavailableError, match="after 2 attempt.*HTTP 503"):
        judge.score(["c"], facts=["{}"], video=[""], question=["q"])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (completion("no JSON here"), 0.0),  # a real answer without scores: 0, as the paper's judge
        (completion([{"type": "text", "text": '{"reasoning": 5}'}]), 1.0),  # content parts
        (completion(None), 0.0),
    ],
)
def test_answers_are_parsed_like_the_in_process_judge(scripted, reply, expected) -> None:
    url, handler = scripted
    handler.script = [(200, reply)]
    assert served(url, None, retries=0).score(["c"], facts=["{}"], video=[""], question=["q"]) == [expected]


@pytest.mark.parametrize(
    ("status", "body"), [(200, {"result": "ok"}), (200, "not json"), (400, {"error": "bad"})]
)
def test_replies_that_are_not_completions_raise(scripted, status, body) -> None:
    url, handler = scripted
    handler.script = [(status, body)]
    with pytest.raises(JudgeResponseError, match="did not return a chat completion|non-JSON|HTTP 400"):
        served(url, None, retries=3).score(["c"], facts=["{}"], video=[""], question=["q"])
    assert len(handler.received) == 1  # not retried: retrying cannot fix them


def test_bad_client_settings_are_named() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        ServedJudge("127.0.0.1:8000", "m")
    with pytest.raises(ValueError, match="retries >= 0"):
        ServedJudge("http://127.0.0.1:1/v1", "m", retries=-1)
    with pytest.raises(ValueError, match=r"\[H, W, 3\] uint8"):
        png_data_url(np.zeros((4, 4), "uint8"))
    assert openai_messages([{"role": "system", "content": "s"}], []) == [{"role": "system", "content": "s"}]
