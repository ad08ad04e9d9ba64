"""R_judge from a served VLM: an OpenAI-compatible chat completions endpoint (vLLM, SGLang, ours).

Real deployments run the judge on its own GPU behind `POST {judge_url}/chat/completions`.
`ServedJudge` sends each completion as one chat request, the same messages the in-process judge
renders (`frame_messages`: "Frame1: <image> ..." then the question, the reasoning and the facts),
with every frame as a PNG data URL, `temperature: 0` and `max_tokens`. Requests of one call run
concurrently (`concurrency` at a time: the server batches what arrives together). The answer text
goes through `parse_judge_scores`, like the in-process judge's.

Failure is loud, never a silent 0: connection errors, timeouts and HTTP 408/429/5xx are retried
with exponential backoff (`retries` times after the first attempt); then `JudgeUnavailableError`
names the endpoint, the attempts and the last error, and the RL step fails. Other HTTP errors
(400, 401, 404, ...) fail at once with the server's message; a reply that is not a chat completion
raises `JudgeResponseError`. An answer that is a chat completion but holds no parsable JSON
scores 0, as the paper's judge does.

Credentials come from the environment only: the bearer token is read from the variable named by
`api_key_env` (default AVATAR_JUDGE_API_KEY) when it is set, and never logged or stored.
PNG keeps the frames lossless, so a served and an in-process copy of one model see the same
pixels (and, greedy, give the same scores); the price is larger requests than JPEG.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from avatar_core.models.judge import PROMPT_VERSION, JudgeFrames, check_columns, frame_messages, judge_text
from avatar_core.rewards.judge import parse_judge_scores

log = logging.getLogger(__name__)
# httpx logs every request at INFO; an RL step sends one per completion, so keep only its warnings.
logging.getLogger("httpx").setLevel(logging.WARNING)

RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_API_KEY_ENV = "AVATAR_JUDGE_API_KEY"
MAX_BACKOFF_S = 30.0


class JudgeUnavailableError(RuntimeError):
    """The judge endpoint did not answer (after the configured retries)."""


class JudgeResponseError(RuntimeError):
    """The judge endpoint answered with something that is not a usable chat completion."""


def png_data_url(frame: np.ndarray) -> str:
    """An [H, W, 3] uint8 frame as a `data:image/png;base64,...` URL."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"a frame must be [H, W, 3] uint8, got {list(frame.shape)} {frame.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def openai_messages(messages: list[dict[str, Any]], frames: list[np.ndarray]) -> list[dict[str, Any]]:
    """HF-style chat messages -> OpenAI messages: the k-th image item becomes frame k as a data URL."""
    images = iter(frames)
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            parts = []
            for item in content:
                if item["type"] == "image":
                    parts.append({"type": "image_url", "image_url": {"url": png_data_url(next(images))}})
                else:
                    parts.append({"type": "text", "text": item["text"]})
            content = parts
        converted.append({"role": message["role"], "content": content})
    return converted


def _answer_text(reply: Any, url: str) -> str:
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeResponseError(
            f"judge at {url} did not return a chat completion: {str(reply)[:300]}"
        ) from None
    if content is None:
        return ""
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


class ServedJudge:
    """Scores reasoning with a judge behind an OpenAI-compatible endpoint; see the module docstring."""

    def __init__(
        self,
        url: str,
        model: str,
        n_frames: int = 8,
        max_new_tokens: int = 64,
        media_root: str | Path | None = None,
        *,
        max_pixels: int = 448 * 448,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        concurrency: int = 8,
        api_key_env: str = DEFAULT_API_KEY_ENV,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"judge_url must start with http:// or https://, got {url!r}")
        if max_new_tokens < 1 or concurrency < 1 or retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError(
                "need max_new_tokens >= 1, concurrency >= 1, retries >= 0, timeout_s > 0 and backoff_s >= 0; got "
                f"{max_new_tokens}, {concurrency}, {retries}, {timeout_s}, {backoff_s}"
            )
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.n_frames = n_frames
        self.max_new_tokens = max_new_tokens
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self.api_key_env = api_key_env
        self.frames = JudgeFrames(media_root, n_frames, max_pixels)
        self._client = httpx.Client(timeout=timeout_s)

    @property
    def identity(self) -> str:
        """What the scores depend on (the cache namespace); the URL is where, not what, so it is left out."""
        return (
            f"served|{self.model}|frames={self.n_frames}|tokens={self.max_new_tokens}|"
            f"pixels={self.frames.max_pixels}|prompt={PROMPT_VERSION}"
        )

    def with_blank_frames(self) -> ServedJudge:
        """The same endpoint shown black frames: the honesty-check control."""
        import copy

        blank = copy.copy(self)
        blank.frames = self.frames.blanked()
        return blank

    def request_body(self, completion: str, facts: str, question: str, video: str) -> dict[str, Any]:
        frames = self.frames.frames(video)
        frame_list = [] if frames is None else list(frames)
        messages = frame_messages(judge_text(completion, facts, question), len(frame_list))
        return {
            "model": self.model,
            "messages": openai_messages(messages, frame_list),
            "max_tokens": self.max_new_tokens,
            "temperature": 0.0,
        }

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def post(self, body: dict[str, Any]) -> str:
        """One chat request with retries; the answer text."""
        attempts = self.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            try:
                response = self._client.post(self.endpoint, json=body, headers=self._headers())
            except httpx.TransportError as err:  # refused, reset, DNS, timeouts
                last = f"{type(err).__name__}: {err}"
                log.warning(
                    "judge request to %s failed (attempt %d/%d): %s",
                    self.endpoint,
                    attempt + 1,
                    attempts,
                    last,
                )
                continue
            if response.status_code in RETRIABLE_STATUS:
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                log.warning(
                    "judge at %s answered %s (attempt %d/%d)", self.endpoint, last, attempt + 1, attempts
                )
                continue
            if response.status_code != 200:
                hint = (
                    f" (set {self.api_key_env} in the environment)"
                    if response.status_code in (401, 403)
                    else ""
                )
                raise JudgeResponseError(
                    f"judge at {self.endpoint} refused the request: HTTP {response.status_code}: "
                    f"{response.text[:300]}{hint}"
                )
            try:
                reply = response.json()
            except ValueError:
                raise JudgeResponseError(
                    f"judge at {self.endpoint} answered non-JSON: {response.text[:300]}"
                ) from None
            return _answer_text(reply, self.endpoint)
        raise JudgeUnavailableError(
            f"judge endpoint {self.endpoint} did not answer after {attempts} attempt(s) "
            f"(timeout {self.timeout_s:g} s each): {last}"
        )

    def raw_answers(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[str]:
        """The judge's answer text for each completion (requests run `concurrency` at a time)."""
        check_columns(completions, facts, video, question)
        bodies = [
            self.request_body(c, f, q, v)
            for c, f, q, v in zip(completions, facts, question, video, strict=True)
        ]
        if len(bodies) <= 1 or self.concurrency == 1:
            return [self.post(body) for body in bodies]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies))) as pool:
            futures = [pool.submit(self.post, body) for body in bodies]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:  # the step fails: requests not yet started are not sent
                    future.cancel()
                raise

    def score(
        self, completions: list[str], *, facts: list[str], video: list[str], question: list[str]
    ) -> list[float]:
        """Scores in [0, 1], one per completion; an unparsable answer scores 0, an unreachable judge raises."""
        answers = self.raw_answers(completions, facts=facts, video=video, question=question)
        return [parse_judge_scores(answer) for answer in answers]

    def close(self) -> None:
        self._client.close()
