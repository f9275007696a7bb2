"""Fixtures for the resilience tests (helpers in tests/resilience/_support.py)."""

from __future__ import annotations

import pytest

from tests.resilience._support import THUMB


@pytest.fixture
def api_url(prefect_harness) -> str:
    """The session's temporary Prefect API, for `lightbox run` child processes."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@pytest.fixture
def thumb_settings(run_settings):
    """RunSettings with the small ``thumb`` profile and one render attempt."""

    def make(**overrides):
        return run_settings(**{"profiles": THUMB, "max_attempts": 1, **overrides})

    return make
