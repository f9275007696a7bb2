"""Remove the folders ZIP manifests were unpacked into, once the batch no longer needs them.

``catalog.unzip`` unpacks each ZIP into ``<data_dir>/unpacked/<sha16>-<random>/``; only
``validate_source`` reads from there (it stores each original in the work store by its
sha256), so the folder goes when the batch ends (docs/ARCHITECTURE.md#storage).
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from catalog.unzip import remove_unpacked, unpacked_folders
from tasks.records import RunSettings, SkuJob


@task(name="remove_unpacked_archives")
def remove_unpacked_archives(jobs: list[SkuJob], settings: RunSettings) -> int:
    """Remove the unpacked folders the batch's photos came from; return how many."""
    unpack_dir = Path(settings.data_dir) / "unpacked"
    removed = remove_unpacked(unpacked_folders([j.source_path for j in jobs if j.source_path], unpack_dir))
    if removed:
        get_run_logger().info("removed %s unpacked ZIP folder(s) under %s", len(removed), unpack_dir)
    return len(removed)
