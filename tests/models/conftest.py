"""Shared fixture: one tiny Omni policy per test session."""

from __future__ import annotations

import pytest
from models_helpers import CORPUS

from avatar_core.config import TinyModelConfig
from avatar_core.models.loading import PolicyBundle, build_tiny_policy


@pytest.fixture(scope="session")
def tiny_bundle() -> PolicyBundle:
    return build_tiny_policy(TinyModelConfig(), CORPUS, seed=0)
