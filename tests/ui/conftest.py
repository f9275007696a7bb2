"""The UI tests' browser: Debian's chromium, headless (tests/ui/chromium.py)."""

import pytest

from tests.ui.chromium import find_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no chromium on PATH: `make test` installs it when run as root "
            "(apt-get install -y chromium); install it to run the UI tests"
        )
    return path
