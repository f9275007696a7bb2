"""Artifact keys and the report's links: what ops open from the run page.

Keys are stable per batch name (``batch-summary-nightly``), so the Artifacts page shows one
entry per name with its history, night after night. Prefect allows lowercase letters,
digits and dashes in a key.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from prefect import task
from prefect.artifacts import create_image_artifact, create_link_artifact

from blocks.destinations import ExportContext, S3Destination
from tasks.export import load_destination

# An artifact's lifecycle event carries its data, and Prefect's server drops events over
# 1.5 MB ("Refusing to publish event"): every artifact Lightbox writes stays under this.
ARTIFACT_BYTES = 1_000_000
LINK_EXPIRY_S = 7 * 24 * 3600  # S3's longest presigned URL: a week of nights to look back
REPORT_FILES = {"report": ("report.html", "text/html"), "contact-sheet": ("contact_sheet.png", "image/png")}


def artifact_key(kind: str, name: str) -> str:
    """``<kind>-<name>`` in Prefect's key alphabet: ``artifact_key("batch-summary",
    "Nightly_EU")`` is ``batch-summary-nightly-eu``. A name with nothing left is ``batch``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "batch"
    return f"{kind}-{slug}"[:200].rstrip("-")


def link_store(thumbnail_store: str | None) -> str | None:
    """The S3 destination block the report is published to: the batch's S3
    ``thumbnail_store`` (the bucket for what people look at), never an export destination,
    whose bucket holds the images a shop takes in. None: ``file://`` links."""
    if thumbnail_store and thumbnail_store.startswith(f"{S3Destination.get_block_type_slug()}/"):
        return thumbnail_store
    return None


@task(name="publish_report_links", retries=2, retry_delay_seconds=2)
def publish_report_links(batch_id: str, name: str, out_dir: str, store_name: str | None) -> dict[str, str]:
    """Link artifacts for report.html and the contact sheet (keys ``batch-report-<name>``,
    ``batch-contact-sheet-<name>``): presigned links into the S3 destination ``store_name``
    (the files uploaded under ``reports/<batch id>/``), or ``file://`` links to ``out_dir``.
    With S3 the contact sheet is an image artifact too. Returns kind -> URL."""
    store = load_destination(store_name) if store_name else None
    urls = {}
    for kind, (filename, content_type) in REPORT_FILES.items():
        path = Path(out_dir).resolve() / filename
        if not path.exists():
            continue
        if isinstance(store, S3Destination):
            data = path.read_bytes()
            key = f"reports/{store.object_key(batch_id, filename)}"
            store.put(
                key,
                data,
                content_type=content_type,
                sha256=hashlib.sha256(data).hexdigest(),
                context=ExportContext(sku=f"batch {name}", profile=kind),
            )
            urls[kind] = store.presigned_url(key, expires=LINK_EXPIRY_S)
        else:
            urls[kind] = path.as_uri()
        create_link_artifact(
            urls[kind],
            link_text=f"{filename} of batch {name}",
            key=artifact_key(f"batch-{kind}", name),
            description=f"Batch {name} ({batch_id[:8]}): {filename}",
        )
    if isinstance(store, S3Destination) and "contact-sheet" in urls:
        create_image_artifact(
            urls["contact-sheet"],
            key=artifact_key("batch-contact-sheet-image", name),
            description=f"Contact sheet of batch {name} ({batch_id[:8]})",
        )
    return urls
