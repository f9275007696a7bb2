"""The Shopify refresh's steps: the plan (now or the off-peak window, which queue), the image
fetch from a loopback http.server, and the one-SKU manifest. The whole flow runs from its
deployment in tests/deployments/test_integration_stack.py."""

import functools
import http.server
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger

from catalog.db import session_scope
from catalog.manifest import load_manifest
from catalog.webhooks import record_delivery
from tasks.refresh import (
    OffPeak,
    fetch_product_image,
    plan_refresh,
    product_folder,
    write_refresh_manifest,
)
from tests.conftest import EXAMPLES

SHOP = "lightbox-demo.myshopify.com"


@pytest.fixture(autouse=True)
def no_run_logger():
    """The tasks are called with .fn(), outside a run: their run logger is switched off."""
    with disable_run_logger():
        yield


@pytest.fixture
def image_server(tmp_path):
    """The sample espresso cup (and a large file) served on a free loopback port."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "cup.png").write_bytes((EXAMPLES / "images" / "espresso-cup.png").read_bytes())
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def window_closed_now() -> OffPeak:
    """A two-hour window that opens two to three hours from now (UTC): now is outside it."""
    start = datetime.now(UTC) + timedelta(hours=3)
    return OffPeak(start=start.strftime("%H:00"), end=(start + timedelta(hours=2)).strftime("%H:00"), timezone="UTC")


def burst(database_url, products: int) -> None:
    """``products`` deliveries of distinct products of SHOP, all just now."""
    now = datetime.now(UTC)
    with session_scope(database_url) as session:
        for i in range(products):
            record_delivery(
                session,
                webhook_id=f"wh-{i}",
                shop=SHOP,
                topic="products/update",
                product_id=str(1000 + i),
                triggered_at=None,
                product_updated_at=now,
                payload_sha256="0" * 64,
                now=now,
            )


def test_one_product_runs_now_on_standard(database_url):
    plan = plan_refresh.fn(database_url, SHOP, False, window_closed_now(), 20, 60)
    assert plan.queue == "standard" and plan.when <= datetime.now(UTC)
    assert "run now" in plan.reason


def test_a_bulk_edit_waits_for_the_window_unless_urgent(database_url):
    burst(database_url, 25)
    window = window_closed_now()
    plan = plan_refresh.fn(database_url, SHOP, False, window, 20, 60)
    assert plan.queue == "standard" and plan.when > datetime.now(UTC) + timedelta(minutes=110)
    assert plan.when == window.window().next_window_start(datetime.now(UTC))
    assert "25 products" in plan.reason
    urgent = plan_refresh.fn(database_url, SHOP, True, window, 20, 60)
    assert urgent.queue == "urgent" and urgent.when <= datetime.now(UTC)


def test_fetches_the_first_image_that_answers(image_server, tmp_path):
    folder = tmp_path / "product"
    path = Path(
        fetch_product_image.fn(
            [f"{image_server}/missing.png", f"{image_server}/cup.png"], str(folder), 5_000_000, allow_private=True
        )
    )
    assert path.parent == folder and path.suffix == ".png"
    assert path.read_bytes() == (EXAMPLES / "images" / "espresso-cup.png").read_bytes()


def test_fetch_refuses_loopback_without_allow_private(image_server, tmp_path):
    with pytest.raises(ValueError, match="loopback"):
        fetch_product_image.fn([f"{image_server}/cup.png"], str(tmp_path), 5_000_000)


def test_fetch_caps_the_size_and_reports_every_url(image_server, tmp_path):
    with pytest.raises(ValueError, match="cap"):
        fetch_product_image.fn([f"{image_server}/cup.png"], str(tmp_path), 1000, allow_private=True)
    with pytest.raises(ConnectionError, match="404"):  # HTTP errors are retried by the task
        fetch_product_image.fn(
            [f"{image_server}/a.png", f"{image_server}/b.png"], str(tmp_path), 1000, allow_private=True
        )
    with pytest.raises(ValueError, match="no http"):
        fetch_product_image.fn([], str(tmp_path), 1000)


def test_manifest_holds_one_sku_for_the_product(image_server, tmp_path):
    folder = product_folder(tmp_path, SHOP, "../../etc")
    assert folder.is_relative_to(tmp_path / "shopify")
    image = fetch_product_image.fn([f"{image_server}/cup.png"], str(folder), 5_000_000, allow_private=True)
    manifest = load_manifest(Path(write_refresh_manifest.fn(image, "lightbox-demo-42", "42")))
    (entry,) = manifest.entries
    assert entry.problem is None and entry.sku == "lightbox-demo-42"
    assert entry.image == Path(image).resolve()
    assert entry.shopify_product_id == "gid://shopify/Product/42"
