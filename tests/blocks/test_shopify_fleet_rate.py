"""Shopify calls share one fleet-wide rate limit per shop (issue 13).

Two real processes, each with its own ``ShopifyStore``, call the same shop on the loopback
fake Admin API (tests/fakes/shopify_admin.py: one leaky bucket per shop, as on Shopify's
side, THROTTLED when a call's cost is not there) at the same moment. With the block's
fleet-wide limit (a Prefect global concurrency limit with slot decay, on the session's
real Prefect server) they stay within the bucket: no call is throttled, and together they
take as long as the bucket's refill demands. Without it, each process paces itself from
the answers it saw and the two overdraw the bucket.

The module is also the client process: ``python -m tests.blocks.test_shopify_fleet_rate``.
The access token goes to it in the environment, never in argv.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.fakes.shopify_admin import SHOP_DOMAIN, ShopifyAdminFake, serve

BUCKET, RESTORE = 100, 50  # points, points a second: a small shop, for a quick test
QUERY = "query Few { products(first: 12) { nodes { id } } }"  # 1 + 2 + 12 = 15 points on the fake
COST, CALLS = 15, 20  # per process: 2 x 300 points through a 100-point bucket (the first call takes 10)
TOKEN_ENV = "LIGHTBOX_TEST_SHOPIFY_TOKEN"


def _clients(fake: ShopifyAdminFake, fleet: bool, env: dict[str, str]) -> list[dict]:
    start_at = time.time() + 8  # both import Prefect first, then start together
    argv = [sys.executable, "-m", "tests.blocks.test_shopify_fleet_rate", fake.base_url, str(CALLS), str(int(fleet))]
    procs = [
        subprocess.Popen(
            [*argv, str(start_at)],
            cwd=REPO,
            env={**env, TOKEN_ENV: fake.access_token},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert fake.access_token not in out + err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.fixture
def prefect_env(prefect_harness) -> dict[str, str]:
    """The environment of a client process: the session's Prefect server, no fleet limit left
    over from another test."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(f"shopify-api:{SHOP_DOMAIN}")
        except ObjectNotFound:
            pass
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_LEVEL": "WARNING"}


def test_two_processes_share_the_shops_bucket(prefect_env):
    from prefect.client.orchestration import get_client

    with serve(ShopifyAdminFake(bucket_size=BUCKET, restore_rate=RESTORE)) as fake:
        results = _clients(fake, fleet=True, env=prefect_env)
    charged = [c for c in fake.calls if c.cost]
    throttled = [c for c in fake.calls if c.fault == "throttled"]
    assert [r["calls"] for r in results] == [CALLS, CALLS]
    assert len(charged) == 2 * CALLS and not throttled, f"{len(throttled)} calls throttled"
    assert min(c.available for c in charged) >= 0
    # the bucket really was the bottleneck: 600 points through 100 + 50 a second
    first, last = min(c.at for c in charged), max(c.at for c in charged)
    assert last - first >= (2 * CALLS * COST - BUCKET) / RESTORE * 0.9
    with get_client(sync_client=True) as client:  # the shared limit, made from Shopify's numbers
        limit = client.read_global_concurrency_limit_by_name(f"shopify-api:{SHOP_DOMAIN}")
    assert limit.limit == BUCKET and limit.slot_decay_per_second == RESTORE


def test_without_the_shared_limit_two_processes_overdraw_it(prefect_env):
    """The control: the same two processes pacing themselves alone get THROTTLED (and retry)."""
    with serve(ShopifyAdminFake(bucket_size=BUCKET, restore_rate=RESTORE)) as fake:
        results = _clients(fake, fleet=False, env=prefect_env)
    assert [r["calls"] for r in results] == [CALLS, CALLS]
    assert [c for c in fake.calls if c.fault == "throttled"]


def test_an_unreachable_prefect_api_leaves_each_process_pacing_itself(caplog):
    """The shared limit is a help, not a dependency: the API down, the calls still go, said once."""
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from tests.fakes.shopify_admin import shopify_store

    logger = logging.getLogger("blocks.shopify_bucket")  # Prefect's logging setup may not propagate it
    logger.addHandler(caplog.handler)
    with (
        serve(ShopifyAdminFake()) as fake,
        temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}),
    ):
        store = shopify_store(fake, fleet_rate_limit=True)
        for _ in range(3):
            store.graphql(QUERY, {}, what="api down")
    assert len([c for c in fake.calls if c.cost]) == 3
    logger.removeHandler(caplog.handler)
    # The record reaches caplog's handler twice where the logger also propagates to the root: count records, not
    # deliveries.
    warnings = {id(r) for r in caplog.records if "shopify-api:" in r.getMessage() and "unavailable" in r.getMessage()}
    assert len(warnings) == 1 and fake.access_token not in caplog.text


def _client_main(base_url: str, calls: int, fleet: bool, start_at: float) -> None:
    from blocks.shopify import ShopifyStore

    store = ShopifyStore(
        shop_domain=SHOP_DOMAIN,
        admin_api_url=base_url,
        access_token=os.environ[TOKEN_ENV],
        webhook_secret="whsec-test",
        fleet_rate_limit=fleet,
        max_retries=10,
        backoff_s=0.2,
    )
    time.sleep(max(0.0, start_at - time.time()))
    began = time.monotonic()
    for _ in range(calls):
        store.graphql(QUERY, {}, what="fleet rate test")
    store.close()
    print(json.dumps({"calls": calls, "elapsed": time.monotonic() - began}))


if __name__ == "__main__":
    _client_main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", float(sys.argv[4]))
