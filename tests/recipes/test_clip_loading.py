"""SFT and an RL stage over a data set larger than the clip cache: the cache stays within its limit,
clips come from the media store (never decoded during the stage) and are read again when evicted;
a stage refuses a store built with other media settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from recipe_helpers import tiny_config

import avatar_core.data.media as media_module
from avatar_core.data.store import StoreError
from avatar_core.recipes import common, evaluate, rl, sft

CACHE_MB = 0.5  # about 3 of the tiny project's clips (4 frames of 56 x 56 and 2 s of audio: 162 KiB)


@pytest.fixture()
def opened(monkeypatch) -> list:
    """Every loader a recipe opens, and a decoder that fails if anything decodes during a stage."""
    loaders: list = []

    def recording_open_clips(cfg, root=None):
        loader = common.open_clips(cfg, root)
        loaders.append(loader)
        return loader

    def no_decoding(*args, **kwargs):
        raise AssertionError("a stage decoded a clip: clips must come from the media store")

    for module in (sft, rl, evaluate):
        monkeypatch.setattr(module, "open_clips", recording_open_clips)
    monkeypatch.setattr(media_module, "load_clip", no_decoding)  # what decode_clip calls
    return loaders


def _check_bounded(loader, n_clips: int) -> None:
    limit = int(CACHE_MB * 2**20)
    assert loader.cache_bytes == limit
    assert 0 < loader.stats.peak_cached_bytes <= limit
    assert loader.stats.cached_bytes <= limit
    store = loader.source.store
    assert sum(store.entry_bytes(k) for k in store.keys()) > 3 * limit  # the data set dwarfs the cache
    assert loader.stats.loads > n_clips  # evicted clips were read again, not kept


def test_sft_and_rl_run_with_the_cache_bounded(project: Path, opened):
    cfg = tiny_config(project)
    cfg.data.loader.cache_mb = CACHE_MB
    cfg.sft.max_steps = 8  # 8 steps x 4 samples over 16 training clips: every clip read twice
    cfg.paths.sft_dir = str(project / "checkpoints" / "sft_bounded")
    result = sft.run_sft(cfg, progress=False)
    assert result["steps"] == 8 and result["rejected_samples"] == []
    (sft_loader,) = opened
    _check_bounded(sft_loader, n_clips=result["train_samples"])

    rl_result = rl.run_rl(cfg, "s1", progress=False)
    assert rl_result["steps"] == 2 and rl_result["rejected_samples"] == []
    rl_loader = opened[1]
    assert rl_loader.stats.peak_pending > 0  # the next step's prompts were read ahead
    assert rl_loader.stats.peak_cached_bytes <= int(CACHE_MB * 2**20)


def test_a_stage_refuses_a_store_of_other_media_settings(project: Path):
    cfg = tiny_config(project)
    cfg.data.media.n_frames = 8
    cfg.paths.sft_dir = str(project / "checkpoints" / "sft_other_media")
    with pytest.raises(StoreError, match=r"n_frames: store 4, params 8.*rerun ingest"):
        sft.run_sft(cfg, progress=False)
