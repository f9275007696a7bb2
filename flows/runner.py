"""The task runner both flows use: threads bounded by the machine's cores.

Prefect's default thread pool is unbounded, so a 25-SKU shard rendered and scored ~75
canvases of ~2048 px at once: 10.8 GB peak at 100 SKUs, and on 2 cores the threads mostly
thrash (100 SKUs: 342 s unbounded vs 250 s at 2 threads, measured 2026-11). Bounded, the
peak follows the number of workers, not the shard or batch size; the heap is kept from
growing with the batch by tasks/heap.py (two malloc arenas, trimmed after each shard round).
"""

from __future__ import annotations

import os

from prefect.task_runners import ThreadPoolTaskRunner

from tasks.heap import limit_arenas


def bounded_task_runner() -> ThreadPoolTaskRunner:
    limit_arenas()  # before the pool's threads exist: each takes its arena at its first malloc
    return ThreadPoolTaskRunner(max_workers=max(2, os.cpu_count() or 2))
