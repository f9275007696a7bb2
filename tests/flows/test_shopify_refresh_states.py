"""The Shopify refresh reports its one-SKU batch truthfully (issue 13): done with the batch's
counts, or Failed with the batch's message when the product's SKU failed."""

import functools
import http.server
import threading

import pytest

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_harness")
SHOP = "lightbox-demo.myshopify.com"


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    for name in ("espresso-cup.png", "truncated.jpg"):
        (root / name).write_bytes((EXAMPLES / "images" / name).read_bytes())
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def _refresh(served, image, product_id, tmp_path, run_settings):
    from flows.shopify_refresh import shopify_refresh

    return shopify_refresh(
        shop=SHOP,
        product_id=product_id,
        image_urls=[f"{served}/{image}"],
        settings=run_settings(),
        out_dir=str(tmp_path / "out"),
        planned=True,
        allow_private_urls=True,
        return_state=True,
    )


def test_a_refresh_whose_sku_fails_fails_with_the_batch_reason(served, tmp_path, run_settings):
    state = _refresh(served, "truncated.jpg", "77", tmp_path, run_settings)
    assert state.is_failed() and "1 failed" in state.message and "more than the 20 % allowed" in state.message
    summary = state.result(raise_on_failure=False).report
    assert summary["status"] == "failed" and summary["counts"]["failed"] == 1


def test_a_refresh_that_renders_returns_the_counts(served, tmp_path, run_settings):
    state = _refresh(served, "espresso-cup.png", "78", tmp_path, run_settings)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["status"] == "done" and sum(summary["counts"].values()) == 1
