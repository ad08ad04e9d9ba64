"""Fixtures for the whole suite."""

from __future__ import annotations

import logging

import pytest

OUR_LOGGERS = ("avatar_core", "flows", "tasks")


@pytest.fixture(autouse=True)
def _our_loggers_enabled() -> None:
    """Tests read our log lines (caplog). A library's logging set-up run earlier in the same process
    can disable every logger that exists at that moment: dateparser, reached through Prefect, runs
    dictConfig with disable_existing_loggers when the root logger has no handler. Under pytest-xdist
    that depends on which files a worker ran before, so each test starts with ours enabled."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.split(".")[0] in OUR_LOGGERS:
            logger.disabled = False
