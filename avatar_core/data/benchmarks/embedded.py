"""Media that a parquet release embeds as bytes: written out once as files under the benchmark root.

Hugging Face exports carry images and audio either as raw bytes or as a `{"bytes", "path"}`
struct (the `Image` / `Audio` features). The decoders read files, so each embedded value is
written once to `_extracted/<question id>/<column><ext>` under the root (the extension from the
struct's file name, else from the data's magic bytes); a later load finds it and writes nothing.
A value that is a path string is returned as given (root-relative, checked by the loader).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from avatar_core.data.benchmarks.core import MalformedRecordError

EXTRACTED = "_extracted"

_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG", ".png"),
    (b"GIF8", ".gif"),
    (b"ID3", ".mp3"),
    (b"\xff\xfb", ".mp3"),
    (b"fLaC", ".flac"),
    (b"OggS", ".ogg"),
    (b"\x1a\x45\xdf\xa3", ".webm"),
)


def sniff_extension(data: bytes) -> str:
    """File extension from the first bytes ('.bin' when unknown).

    >>> sniff_extension(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt "), sniff_extension(b"\\x89PNG...")
    ('.wav', '.png')
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return ".wav"
    if data[4:8] == b"ftyp":
        return ".mp4"
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), ".bin")


def media_value(raw: dict[str, Any], column: str, qid: str, root: Path) -> str:
    """The root-relative path of one media column ('' when empty); embedded bytes are written out once."""
    value = raw.get(column)
    if isinstance(value, dict):  # a Hugging Face Image/Audio feature: {"bytes": ..., "path": ...}
        data, name = value.get("bytes"), value.get("path") or ""
        if not data:
            value = name
        else:
            return _write_once(root, qid, column, data, Path(str(name)).suffix or sniff_extension(data))
    if value is None or value in ("", b""):
        return ""
    if isinstance(value, bytes):
        return _write_once(root, qid, column, value, sniff_extension(value))
    if isinstance(value, str):
        return value.strip()
    raise MalformedRecordError(
        column, f"expected a path string or embedded bytes, got {type(value).__name__}"
    )


def _write_once(root: Path, qid: str, column: str, data: bytes, suffix: str) -> str:
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", qid)
    rel = f"{EXTRACTED}/{safe_id}/{column}{suffix}"
    target = root / rel
    if not target.is_file() or target.stat().st_size != len(data):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)  # a crash mid-write leaves no half-written file under the final name
    return rel
