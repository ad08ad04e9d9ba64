"""Params presets: overlays that `avatar preset NAME` merges into params.yaml, for real models and
for variants of the embedded default (tiny_*).

Each `<name>.yaml` here holds only the keys that differ from the embedded default (for a model:
its checkpoint, dtype, LoRA, media, processes and the authors' RL settings), with a header saying
where each value comes from. Merging writes the result back to params.yaml after checking
it against the config, so the values still live in one place and DVC sees them. Keys absent from
the overlay (paths, data source, task lists per stage) keep their params.yaml values.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from avatar_core.config import ConfigError, config_from_dict

PRESET_DIR = Path(__file__).resolve().parent


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(preset_names())}")
    return copy.deepcopy(yaml.safe_load(path.read_text()))  # copies: YAML anchors share objects


def merge(base: dict[str, Any], overlay: dict[str, Any], where: str = "") -> dict[str, Any]:
    """`base` with `overlay` merged in: mappings key by key, everything else replaced."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_preset(name: str, params: str | Path) -> dict[str, Any]:
    """Merge preset `name` into the params file at `params` and write it back; returns the result.

    The merged values are validated first, so a preset that does not fit the file's schema
    leaves the file untouched and names the offending keys.
    """
    path = Path(params)
    base = yaml.safe_load(path.read_text()) if path.is_file() else {}
    merged = merge(base or {}, load_preset(name))
    config_from_dict(merged, f"{path} + preset {name}")
    header = ""
    for line in path.read_text().splitlines() if path.is_file() else []:
        if not line.startswith("#"):
            break  # the leading comment block only
        if not line.startswith("# Preset "):
            header += line + "\n"
    note = f"# Preset {name} merged in by `avatar preset {name}` (avatar_core/presets/{name}.yaml).\n"
    path.write_text(header + note + yaml.safe_dump(merged, sort_keys=False))
    return merged
