"""Tasks of a Shopify product refresh: when it runs, fetching the product's image, and its
one-SKU manifest. Files go under ``<data_dir>/shopify/<shop>/<product>/``, named by the
content's sha256, so two refreshes of one product never overwrite each other's input."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prefect import get_run_logger, task

from catalog.db import session_scope
from catalog.offpeak import OffPeakWindow
from catalog.paths import sku_dirname
from catalog.webhooks import products_seen_since
from imaging.fetch import fetch_image
from tasks.bookkeeping import DB_RETRIES
from tasks.common import retry_transient
from tasks.records import Record
from tasks.workdir import write_atomic

# Leading bytes of the formats the decoder takes -> file suffix.
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"BM", ".bmp"),
)


class RefreshPlan(Record):
    when: datetime
    queue: str
    reason: str


class OffPeak(Record):
    """The off-peak window as flow parameters: wall-clock "HH:MM" in an IANA zone."""

    start: str = "22:00"
    end: str = "06:00"
    timezone: str = "UTC"

    def window(self) -> OffPeakWindow:
        return OffPeakWindow(time.fromisoformat(self.start), time.fromisoformat(self.end), self.timezone)


def product_folder(data_dir: Path, shop: str, product_id: str) -> Path:
    """Safe folder names even for hostile ids (catalog.paths.sku_dirname)."""
    return Path(data_dir) / "shopify" / sku_dirname(shop) / sku_dirname(product_id)


@task(name="plan_refresh", **DB_RETRIES)
def plan_refresh(
    database_url: str, shop: str, urgent: bool, offpeak: OffPeak, large_batch_threshold: int, burst_minutes: int
) -> RefreshPlan:
    """When and where to refresh: ``plan_run`` with the batch size taken as the number of
    this shop's products that changed in the last ``burst_minutes`` (a bulk edit in the
    admin sends one webhook per product; together they are a large batch)."""
    now = datetime.now(UTC)
    with session_scope(database_url) as session:
        recent = len(products_seen_since(session, shop, now - timedelta(minutes=burst_minutes)))
    plan = offpeak.window().plan_run(now, max(recent, 1), urgent, large_batch_threshold)
    return RefreshPlan(
        when=plan.when,
        queue=plan.queue,
        reason=f"{plan.reason} ({recent} products of {shop} changed in the last {burst_minutes} min)",
    )


def image_suffix(data: bytes, url: str) -> str:
    for magic, suffix in MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    suffix = Path(urlsplit(url).path).suffix.lower()
    return suffix if suffix in {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff"} else ".img"


@task(name="fetch_product_image", retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=retry_transient)
def fetch_product_image(
    image_urls: list[str], folder: str, max_bytes: int, allow_private: bool = False, timeout_s: float = 30.0
) -> str:
    """Fetch the first of ``image_urls`` (payload order: the featured image first) that
    answers; later URLs are tried when one fails. Returns the saved file's path.

    Every URL failing for a policy reason (scheme, private address, over ``max_bytes``)
    raises ValueError (not retried); any network or HTTP failure raises ConnectionError,
    which the retries take."""
    if not image_urls:
        raise ValueError("the product has no http(s) image to fetch")
    logger = get_run_logger()
    failures, transient = [], False
    for url in image_urls:
        try:
            data = fetch_image(url, max_bytes=max_bytes, allow_private=allow_private, timeout=timeout_s)
        except ValueError as exc:
            failures.append(f"{url[:200]!r}: {exc}")
            continue
        except (httpx.HTTPError, TimeoutError) as exc:
            failures.append(f"{url[:200]!r}: {type(exc).__name__}: {exc}")
            transient = True
            continue
        digest = hashlib.sha256(data).hexdigest()
        path = Path(folder) / f"image-{digest[:16]}{image_suffix(data, url)}"
        if not path.is_file():
            write_atomic(path, data)
        logger.info("fetched %d bytes from %r into %s", len(data), url[:200], path.name)
        return str(path)
    message = f"no image of the product could be fetched: {'; '.join(failures)}"
    raise ConnectionError(message) if transient else ValueError(message)


@task(name="write_refresh_manifest")
def write_refresh_manifest(image_path: str, sku: str, shopify_product_id: str) -> str:
    """A one-SKU CSV manifest next to the image; its name follows its content."""
    image = Path(image_path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["sku", "image", "shopify_product_id"])
    writer.writerow([sku, image.name, shopify_product_id])
    data = buffer.getvalue().encode("utf-8")
    path = image.parent / f"manifest-{hashlib.sha256(data).hexdigest()[:16]}.csv"
    if not path.is_file():
        write_atomic(path, data)
    return str(path)
