"""What a render worker's heap keeps between SKUs (docs/ARCHITECTURE.md#unit-of-work).

A SKU attempt allocates and frees a few hundred MB of arrays (photo, masks, canvases).
glibc keeps freed memory for reuse: its mmap threshold rises to 32 MB after the first large
free, so canvases and masks come from the heap, and every new thread gets an arena of its
own (up to 8 per core; every shard starts a new pool). What a later small allocation pins
stays resident, and the largest process grew with the batch: 1182 MB at 10 SKUs, 1330 MB
at 120, 1813 MB at 400 (bench/throughput.py, 2026-12-03). Two fixes that cost too much:
a fixed 1 MB mmap threshold (every canvas its own mapping) made the batch 13 % slower in
page faults (400 SKUs: 802 s vs 711 s) and still grew (1134 -> 1400 MB); ``malloc_trim``
after every attempt held 400 SKUs to 1477 MB but made camera-size batches 14 % slower
(every attempt faulted its pages in again). What is kept: two arenas, glibc's own reuse
within a shard's round, and ``malloc_trim`` once per round (flows/render_shard.py), which
hands the free pages of every arena back to the kernel: 400 SKUs peak at 1528 MB in 719 s
(1120 MB at 10 SKUs: smaller, but still growing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
ARENA_MAX = 2


@lru_cache(maxsize=1)
def _glibc():
    name = ctypes.util.find_library("c")
    if not name or "libc.so" not in name:
        return None  # musl, macOS: other allocators, nothing of this applies
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_arenas() -> bool:
    """At most ``ARENA_MAX`` malloc arenas for this process (``MALLOC_ARENA_MAX``, set
    late): call before the worker threads exist. False where the C library is not glibc."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))


def give_back_freed() -> bool:
    """Return the free pages of every arena to the kernel (``malloc_trim(0)``): after a
    shard's round, what its attempts freed stops counting as the worker's memory. True
    when any was."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))
