"""validate_source: read a SKU's photo safely and store its original bytes for later stages
(content-addressed: the same photo in two batches is one file; docs/ARCHITECTURE.md).

``known_sources`` spares a re-run that work: a photo whose bytes the catalog already
validated (``source_images``, by sha256), within this run's caps, and whose original is
still in the work store is taken as it is, without a decode or a task run of its own."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from prefect import task

from catalog import repository as repo
from catalog.db import session_scope
from imaging.decode import DEFAULT_MAX_SIDE, MIN_SIDE, decode_image
from imaging.errors import ImageRejected
from tasks.bookkeeping import DB_RETRIES, REPLAYED
from tasks.common import retry_transient
from tasks.records import RunSettings, SkuJob, SourceInfo
from tasks.workdir import work_store


@task(
    name="validate_source",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_transient,
    task_run_name="validate-{job.sku}",
    persist_result=True,
)
def validate_source(job: SkuJob, settings: RunSettings) -> SourceInfo:
    """Decode with the safety caps (a photo that cannot be read fails here, named), hash
    the original bytes and store them; ``render_sku`` decodes them again, in memory."""
    path = Path(job.source_path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageRejected(f"cannot read {path.name}: {exc.strerror}") from exc
    if size > settings.max_bytes:
        raise ImageRejected(f"file is {size} bytes (limit {settings.max_bytes})")
    data = path.read_bytes()
    decoded = decode_image(
        data, name=path.name, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes, draft=True
    )  # a check: render_sku decodes the pixels it uses
    sha = hashlib.sha256(data).hexdigest()
    store = work_store(settings)
    target = store.ref(sha, "source")
    if not store.exists(target):
        store.put(target, data)
    return SourceInfo(
        sku_id=job.sku_id,
        sha256=sha,
        path=str(target),
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        size_bytes=size,
    )


@task(name="known_sources", retry_condition_fn=retry_transient, **DB_RETRIES, **REPLAYED)
def known_sources(jobs: list[SkuJob], settings: RunSettings) -> list[SourceInfo | None]:
    """Per job, its photo as validated before (or None: ``validate_source`` it): the file
    hashed as it is read (never held whole), one query for the batch's photos."""
    hashed: dict[int, tuple[str, int]] = {}
    for job in jobs:
        try:
            with open(job.source_path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if 0 < size <= settings.max_bytes:
                    hashed[job.sku_id] = (hashlib.file_digest(fh, "sha256").hexdigest(), size)
        except OSError:  # validate_source says why
            continue
    with session_scope(settings.database_url) as s:
        known = repo.known_sources(s, (sha for sha, _ in hashed.values()))
        rows = {sha: (r.width, r.height, r.format) for sha, r in known.items()}
    store = work_store(settings)
    found: list[SourceInfo | None] = []
    for job in jobs:
        sha, size = hashed.get(job.sku_id, (None, 0))
        width, height, fmt = rows.get(sha, (0, 0, ""))
        within = width * height <= settings.max_pixels and MIN_SIDE <= min(width, height) <= max(width, height)
        within = within and max(width, height) <= DEFAULT_MAX_SIDE
        target = store.ref(sha, "source") if sha in rows else None
        if target is None or not within or not store.exists(target):
            found.append(None)
            continue
        found.append(
            SourceInfo(
                sku_id=job.sku_id, sha256=sha, path=str(target), width=width, height=height, format=fmt, size_bytes=size
            )
        )
    return found
