"""validate_source: read a SKU's photo safely and keep a decoded sRGB copy for later stages."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from prefect import task

from imaging.decode import decode_image
from imaging.errors import ImageRejected
from tasks.common import retry_transient
from tasks.records import RunSettings, SkuJob, SourceInfo
from tasks.workdir import work_path, write_png


@task(name="validate_source", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_transient,
      task_run_name="validate-{job.sku}", persist_result=True)
def validate_source(job: SkuJob, settings: RunSettings) -> SourceInfo:
    """Decode with the safety caps, hash the original bytes, write the sRGB copy."""
    path = Path(job.source_path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageRejected(f"cannot read {path.name}: {exc.strerror}") from exc
    if size > settings.max_bytes:
        raise ImageRejected(f"file is {size} bytes (limit {settings.max_bytes})")
    data = path.read_bytes()
    decoded = decode_image(data, name=path.name, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes)
    sha = hashlib.sha256(data).hexdigest()
    pixels = decoded.rgb if decoded.alpha is None else np.dstack([decoded.rgb, decoded.alpha])
    target = work_path(settings.data_dir, sha, "source.png")
    if not target.exists():
        write_png(target, pixels)
    return SourceInfo(
        sku_id=job.sku_id, sha256=sha, path=str(target), width=decoded.width, height=decoded.height,
        format=decoded.format, size_bytes=size, has_alpha=decoded.alpha is not None,
    )
