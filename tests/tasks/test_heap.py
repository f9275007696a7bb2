"""tasks/heap.py: after a shard's round, what it freed leaves the worker (the growth
bench/throughput.py measured at 400 SKUs), and the arenas are capped. Each case runs in a
fresh interpreter: malloc's state is the process's."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    "libc.so" not in (ctypes.util.find_library("c") or ""), reason="mallopt and malloc_trim are glibc's"
)

# After a 16 MB block is freed, glibc's dynamic threshold rises to 16 MB and 2 MB arrays come
# from the heap. Small objects allocated between them pin the heap's top, so freeing the
# arrays leaves their pages resident until they are trimmed.
PROBE = textwrap.dedent(
    """
    import resource
    import numpy as np
    from tasks.heap import give_back_freed

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    big = np.ones(16 << 20, np.uint8); del big
    arrays, pins = [], []
    for _ in range(100):
        arrays.append(np.ones(2 << 20, np.uint8))
        pins.append(np.ones(600, np.uint8))
    before = rss_mb()
    del arrays
    freed = rss_mb()
    trimmed = give_back_freed()
    print(round(before - freed), round(before - rss_mb()), trimmed)
    """
)

ARENAS = textwrap.dedent(
    """
    from tasks.heap import limit_arenas
    if limit_arenas():
        print("capped")
    """
)


def _run(code: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return run.stdout.strip()


def test_what_a_round_freed_leaves_the_process():
    freed_alone, after_trim, trimmed = _run(PROBE).split()
    assert int(freed_alone) < 50  # glibc keeps the 200 MB the arrays used
    assert int(after_trim) > 150 and trimmed == "True"  # give_back_freed hands it to the kernel


def test_the_arenas_are_capped_on_glibc():
    assert _run(ARENAS) == "capped"
