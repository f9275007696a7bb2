"""Work-file retention: remove work no open batch needs, and the cache records that point at it.

Work files live per source photo under ``<data_dir>/work/<sha[:2]>/<sha>/`` (the original
bytes, masks, upscaled crops, encoded exports: docs/ARCHITECTURE.md, "Storage"). They are a
cache once a SKU has ended: an exported, rejected or failed SKU needs nothing from them,
and a later batch that meets the same photo recomputes what is gone (flows/render_shard.py).
A folder is removed when no SKU that has not ended uses its photo (pending, in QC, held
for review, approved and not yet exported) and nothing in it was written within the
retention. ``render_sku``'s cache records (``sku-*`` result files, and the older per-stage
``segment-*``, ``cutout-*``, ``render-*``, ``qc-*`` ones) older than the retention go too.
Flow-run results (the replay records of a suspended review) are never touched.

    lightbox gc --data-dir DIR [--older-than-days 30] [--dry-run]
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import Sku, SourceImage
from catalog.states import SKU_TERMINAL

RETENTION_DAYS = 30
CACHE_PREFIXES = ("sku-", "segment-", "cutout-", "render-", "qc-")


@dataclass
class GcReport:
    removed_folders: list[str] = field(default_factory=list)
    kept_in_use: int = 0
    kept_recent: int = 0
    removed_records: int = 0
    freed_bytes: int = 0


def _in_use(database_url: str) -> set[str]:
    """The sha256 of every photo a SKU that has not ended still needs."""
    ended = [s.value for s in SKU_TERMINAL]
    with session_scope(database_url) as s:
        rows = s.execute(
            select(SourceImage.sha256).join(Sku, Sku.source_image_id == SourceImage.id).where(Sku.state.not_in(ended))
        )
        return {sha for (sha,) in rows}


def _newest_write(folder: Path) -> tuple[float, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return max((st.st_mtime for st in stats), default=folder.stat().st_mtime), sum(st.st_size for st in stats)


def collect_garbage(
    data_dir: Path,
    database_url: str,
    results_dir: Path | None,
    older_than_days: float = RETENTION_DAYS,
    dry_run: bool = False,
) -> GcReport:
    cutoff = time.time() - older_than_days * 86400.0
    report = GcReport()
    in_use = _in_use(database_url)
    work = Path(data_dir) / "work"
    for folder in sorted(work.glob("??/*")) if work.is_dir() else []:
        if not folder.is_dir():
            continue
        if folder.name in in_use:
            report.kept_in_use += 1
            continue
        newest, size = _newest_write(folder)
        if newest >= cutoff:
            report.kept_recent += 1
            continue
        report.removed_folders.append(folder.name)
        report.freed_bytes += size
        if not dry_run:
            shutil.rmtree(folder)
    if results_dir is not None and Path(results_dir).is_dir():
        for record in Path(results_dir).iterdir():
            if record.is_file() and record.name.startswith(CACHE_PREFIXES) and record.stat().st_mtime < cutoff:
                report.removed_records += 1
                report.freed_bytes += record.stat().st_size
                if not dry_run:
                    record.unlink()
    return report
