"""A tiny flow for tests/infra/test_queue_priority.py: it holds its work-pool slot until the
test creates the release file (or ``max_s`` passes), so the test decides when slots free up."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow


@flow(name="queue-sleeper", log_prints=False)
def sleeper(release: str, max_s: float = 600.0) -> str:
    deadline = time.monotonic() + max_s
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} did not appear within {max_s} s")
        time.sleep(0.5)
    return "released"
