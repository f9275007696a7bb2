"""Tasks of a Shopify product refresh: when it runs, fetching the product's image, and its
one-SKU manifest; for a bulk edit's refreshes deferred to the off-peak window, recording
them for their shop's one batch (``catalog/refreshes.py``), taking them when the batch
runs, its manifest, and how each product ended. Files go under
``<data_dir>/shopify/<shop>/<product>/``, named by the content's sha256, so two refreshes
of one product never overwrite each other's input; a shop's batch manifest lies in
``<data_dir>/shopify/<shop>/`` and names the images below it."""

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
from catalog.refreshes import finish_pending, record_pending, take_pending
from catalog.webhooks import parse_timestamp, products_seen_since
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


class DeferredProduct(Record):
    """A product a shop's off-peak batch took: its newest image URLs."""

    product_id: str
    image_urls: list[str]


class BatchRow(Record):
    """One row of a shop's batch manifest: the image fetched, or why it was not."""

    sku: str
    product_id: str
    image: str | None = None
    problem: str | None = None


def shop_folder(data_dir: Path, shop: str) -> Path:
    return Path(data_dir) / "shopify" / sku_dirname(shop)


def product_folder(data_dir: Path, shop: str, product_id: str) -> Path:
    """Safe folder names even for hostile ids (catalog.paths.sku_dirname)."""
    return shop_folder(data_dir, shop) / sku_dirname(product_id)


def refresh_sku(shop: str, product_id: str) -> str:
    """The SKU of a product's refresh: ``<shop name>-<product id>``."""
    return f"{shop.removesuffix('.myshopify.com')}-{product_id}"


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


@task(name="defer_refresh", **DB_RETRIES)
def defer_refresh(
    database_url: str,
    shop: str,
    product_id: str,
    image_urls: list[str],
    updated_at: str | None,
    webhook_id: str | None,
    window_start: datetime,
) -> str:
    """Put the product on its shop's list for the off-peak batch opening at
    ``window_start``: ``recorded`` (newest version kept), ``older`` or ``taken``."""
    with session_scope(database_url) as session:
        return record_pending(
            session,
            shop=shop,
            product_id=product_id,
            window_start=window_start,
            image_urls=image_urls,
            product_updated_at=parse_timestamp("updated_at", updated_at),
            webhook_id=webhook_id,
            now=datetime.now(UTC),
        )


@task(name="take_deferred", **DB_RETRIES)
def take_deferred(database_url: str, shop: str, window_start: datetime, run_id: str) -> list[DeferredProduct]:
    """The products waiting for this shop's batch (this window or an earlier one), taken
    for ``run_id``: one per product, its newest image URLs."""
    with session_scope(database_url) as session:
        taken = take_pending(session, shop=shop, window_start=window_start, run_id=run_id, now=datetime.now(UTC))
    return [DeferredProduct(product_id=p.product_id, image_urls=list(p.image_urls)) for p in taken]


@task(name="write_batch_manifest")
def write_batch_manifest(rows: list[BatchRow], folder: str) -> str:
    """The shop's batch manifest in ``folder`` (the shop's folder, above each product's):
    one row per product; a product whose image could not be fetched has no image and the
    fetch's reason in ``image_problem``, so its SKU starts ``failed`` in the batch with that
    reason (catalog/manifest.py). Its name follows its content."""
    base = Path(folder)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["sku", "image", "shopify_product_id", "image_problem"])
    for row in rows:
        image = Path(row.image).relative_to(base).as_posix() if row.image is not None else ""
        problem = "" if row.image is not None else row.problem or "image not fetched"
        writer.writerow([row.sku, image, row.product_id, problem])
    data = buffer.getvalue().encode("utf-8")
    path = base / f"batch-{hashlib.sha256(data).hexdigest()[:16]}.csv"
    if not path.is_file():
        write_atomic(path, data)
    return str(path)


@task(name="finish_deferred", **DB_RETRIES)
def finish_deferred(database_url: str, run_id: str, outcomes: dict[str, tuple[str, str | None]]) -> int:
    """Record how each product of the batch ended (product id -> (SKU state, reason))."""
    with session_scope(database_url) as session:
        return finish_pending(session, run_id=run_id, outcomes=outcomes)
