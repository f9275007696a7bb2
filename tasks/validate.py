"""validate_source: read a SKU's photo safely and store its original bytes for later stages
(content-addressed: the same photo in two batches is one file; docs/ARCHITECTURE.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from prefect import task

from imaging.decode import decode_image
from imaging.errors import ImageRejected
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
        has_alpha=decoded.alpha is not None,
    )
