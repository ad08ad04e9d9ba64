"""A small OpenAI-compatible chat completions server for a native InternVL judge.

    python -m avatar_core.models.judge_server --model OpenGVLab/InternVL3-2B-hf --port 8000

serves `POST /v1/chat/completions` (text and `image_url` parts with data URLs, `max_tokens` or
`max_completion_tokens`, `temperature`: 0 is greedy), `GET /v1/models` and `GET /health`, on
127.0.0.1 unless told otherwise. With `--api-key-env VAR` and VAR set, requests must carry
`Authorization: Bearer $VAR`. Errors are OpenAI-style JSON (`{"error": {"message", "type"}}`).

Why it exists: on GPUs, vLLM or SGLang serve InternVL3 and `reward_options.judge_url` points at
them. `transformers serve` (transformers 5.24) cannot serve the judge on our CPU machines: it
builds processors with `AutoProcessor`, which for InternVL requires the torchvision video
processor, and the only torchvision on our package index is built for CUDA torch (importing it
fails with "operator torchvision::nms does not exist", which then also breaks `transformers
serve`'s own imports). This server runs the same InternVL code as the in-process judge
(`internvl_generate`), so the two give the same greedy answers. Requests are answered one at a
time (one model, one lock): it is a test and small-deployment server, not a batching engine.
"""

import argparse
import base64
import binascii
import io
import os
import threading
import time
import uuid
from typing import Any

import numpy as np
from PIL import Image

from avatar_core.models.internvl import InternVLBundle

DEFAULT_MAX_TOKENS = 64
MAX_TOKENS_LIMIT = 4096
_DATA_URL_PREFIXES = ("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/webp;base64,")


class RequestError(ValueError):
    """A request the server cannot answer; `status` is the HTTP status to send."""

    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def decode_data_url(url: str, where: str) -> np.ndarray:
    """A base64 PNG/JPEG/WebP data URL -> [H, W, 3] uint8 RGB."""
    if not isinstance(url, str) or not url.startswith(_DATA_URL_PREFIXES):
        shown = url[:40] if isinstance(url, str) else type(url).__name__
        raise RequestError(
            f"{where}: only base64 data URLs of png/jpeg/webp images are accepted, got {shown!r}"
        )
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return np.asarray(image.convert("RGB"))
    except (binascii.Error, ValueError, OSError) as err:
        raise RequestError(f"{where}: the image data URL does not decode: {err}") from None


def parse_messages(messages: Any) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """OpenAI chat messages -> (HF chat messages with image items, the images in order)."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    chat: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RequestError(f"messages[{i}]: needs a role of system, user or assistant")
        content = message.get("content")
        if isinstance(content, str):
            chat.append({"role": message["role"], "content": content})
            continue
        if not isinstance(content, list):
            raise RequestError(f"messages[{i}].content must be a string or a list of parts")
        parts = []
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif kind == "image_url":
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else image_url
                images.append(decode_data_url(url, where))
                parts.append({"type": "image"})
            else:
                raise RequestError(
                    f"{where}: unsupported part (type {kind!r}); text and image_url are served"
                )
        chat.append({"role": message["role"], "content": parts})
    return chat, images


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"'{key}' must be a number in [{low:g}, {high:g}], got {value!r}")
    return value


class JudgeService:
    """The request handling, free of the web framework so that it can be tested and reused."""

    def __init__(self, bundle: InternVLBundle, served_name: str, api_key: str | None = None) -> None:
        self.bundle = bundle
        self.served_name = served_name
        self.api_key = api_key
        self._lock = threading.Lock()

    def check_auth(self, header: str | None) -> None:
        if self.api_key and header != f"Bearer {self.api_key}":
            raise RequestError("missing or wrong bearer token", status=401, kind="authentication_error")

    def models(self) -> dict[str, Any]:
        entry = {"id": self.served_name, "object": "model", "created": 0, "owned_by": "avatar"}
        return {"object": "list", "data": [entry]}

    def complete(self, body: Any) -> dict[str, Any]:
        from avatar_core.models.judge import internvl_generate

        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        if body.get("model") not in (None, self.served_name):
            raise RequestError(
                f"model {body.get('model')!r} is not served here; served: {self.served_name!r}",
                status=404,
                kind="not_found_error",
            )
        if body.get("stream"):
            raise RequestError("streaming is not supported by this server; send stream: false")
        if body.get("n", 1) != 1:
            raise RequestError("only n = 1 is supported")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        max_tokens = int(
            _number({"max_tokens": limit}, "max_tokens", DEFAULT_MAX_TOKENS, 1, MAX_TOKENS_LIMIT)
        )
        temperature = float(_number(body, "temperature", 1.0, 0.0, 2.0))
        chat, images = parse_messages(body.get("messages"))
        with self._lock:
            text = internvl_generate(self.bundle, [chat], [images], max_tokens, temperature)[0]
        tokenizer = self.bundle.tokenizer
        completion_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length" if completion_tokens >= max_tokens else "stop",
                }
            ],
            "usage": {"completion_tokens": completion_tokens, "images": len(images)},
        }


def create_app(service: JudgeService) -> Any:
    """The FastAPI application around `service`."""
    # Imported here (the rest of the package never needs a web framework); no `from __future__ import
    # annotations` in this module, so FastAPI sees the real `Request` class in the signatures below.
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="avatar judge", docs_url=None, redoc_url=None)

    def error(err: RequestError) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": str(err), "type": err.kind, "code": None}}, status_code=err.status
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models(request: Request) -> Any:
        try:
            service.check_auth(request.headers.get("authorization"))
        except RequestError as err:
            return error(err)
        return service.models()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        from starlette.concurrency import run_in_threadpool

        try:
            service.check_auth(request.headers.get("authorization"))
            try:
                body = await request.json()
            except ValueError:
                raise RequestError("the request body is not JSON") from None
            return await run_in_threadpool(service.complete, body)
        except RequestError as err:
            return error(err)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m avatar_core.models.judge_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", required=True, help="native InternVL checkpoint folder or hub name")
    parser.add_argument(
        "--served-model-name", default=None, help="name clients send as 'model' (default: --model)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--api-key-env", default=None, help="require 'Bearer $VAR' when this variable is set")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    import uvicorn

    from avatar_core.models.internvl import load_internvl

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    service = JudgeService(
        load_internvl(args.model, args.dtype), args.served_model_name or args.model, api_key
    )
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
