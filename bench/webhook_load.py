"""Load on the Shopify webhook receiver: a bounded, fixed-rate burst of signed deliveries.

The receiver runs with uvicorn on loopback in a child process (its own interpreter, so the
load generator does not share its GIL) against a fresh SQLite catalog in a temporary
folder, or ``--database-url``. Events are built as real ``prefect.events.Event`` objects
and kept in a list (default), or emitted to the Prefect API with ``--prefect`` (needs
PREFECT_API_URL). The client sends ``--rate`` requests per second for ``--duration``
seconds (open loop: a slow answer does not slow the sending), each a products/update
for one of ``--products`` products with a unique webhook id and a newer ``updated_at``.

Latency is measured from each request's *scheduled* send time to its answer, so queueing
in the client or the server is counted, not hidden. Target: p99 < 100 ms at 100 req/s.

    python bench/webhook_load.py [--rate 100] [--duration 10] [--database-url URL]
                                 [--prefect] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret"
SHOP = "bench-store.myshopify.com"
MAX_RATE, MAX_DURATION = 1000, 120  # keep the burst bounded


def serve(database_url: str, prefect: bool, port_out, stop, result_out) -> None:
    """Child process: the receiver on a free loopback port until ``stop`` is set."""
    import uvicorn
    from prefect.events import Event

    from deployments.webhook import create_app
    from tasks.events import drain_prefect_events, emit_product_event, product_event_fields

    events: list[Event] = []

    def record_event(payload: dict) -> str:
        event = Event(**product_event_fields(payload))
        events.append(event)
        return str(event.id)

    app = create_app(
        get_secret=lambda: SECRET, database_url=database_url, emit_event=emit_product_event if prefect else record_event
    )
    # proto IPPROTO_TCP, or asyncio leaves Nagle on for accepted connections (+40 ms each)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    )
    threading.Thread(target=lambda: (stop.wait(), setattr(server, "should_exit", True)), daemon=True).start()
    port_out.put(sock.getsockname()[1])
    cpu = time.process_time()
    server.run(sockets=[sock])
    cpu = time.process_time() - cpu
    if prefect:
        drain_prefect_events()
    result_out.put({"events_recorded": None if prefect else len(events), "server_cpu_s": round(cpu, 3)})


def delivery(i: int, products: int, start: datetime) -> tuple[bytes, dict[str, str]]:
    pid = int(start.timestamp()) * 10_000 + i % products  # new products each run: none stale
    body = json.dumps(
        {
            "id": pid,
            "title": f"Product {pid}",
            "handle": f"product-{pid}",
            "vendor": "Bench",
            "updated_at": (start + timedelta(seconds=i)).isoformat(),
            "status": "active",
            "body_html": "<p>" + "Lorem ipsum dolor sit amet. " * 40 + "</p>",
            "images": [
                {
                    "id": pid * 10 + k,
                    "position": k + 1,
                    "width": 2048,
                    "height": 2048,
                    "src": f"https://cdn.shopify.com/s/files/1/0000/0001/products/{pid}-{k}.jpg",
                }
                for k in range(4)
            ],
            "variants": [{"id": pid * 100 + k, "sku": f"SKU-{pid}-{k}", "price": "19.00"} for k in range(3)],
        }
    ).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": f"bench-{start.timestamp():.0f}-{i:07d}",
        "X-Shopify-Triggered-At": (start + timedelta(seconds=i)).isoformat(),
    }


async def burst(base_url: str, rate: float, duration: float, products: int) -> dict:
    total = int(rate * duration)
    start = datetime.now(UTC)
    requests = [delivery(i, products, start) for i in range(total)]  # signed before the clock starts
    latencies, statuses, errors, by_second = [], {}, [], {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base_url, timeout=10, limits=limits) as client:
        assert (await client.get("/healthz")).status_code == 200

        async def one(i: int, due: float) -> None:
            body, headers = requests[i]
            try:
                r = await client.post("/webhooks/shopify", content=body, headers=headers)
            except httpx.HTTPError as exc:
                errors.append(f"{exc.__class__.__name__}: {exc}")
                return
            latencies.append(time.perf_counter() - due)
            by_second.setdefault(int(i / rate), []).append(latencies[-1] * 1000)
            key = f"{r.status_code} {r.json().get('status')}"
            statuses[key] = statuses.get(key, 0) + 1

        t0, cpu0 = time.perf_counter(), time.process_time()
        tasks = []
        for i in range(total):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        elapsed, client_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    acknowledged = sum(n for key, n in statuses.items() if key.startswith("200 "))
    ms = sorted(x * 1000 for x in latencies)
    return {
        "sent": total,
        "target_rate": rate,
        "duration_s": duration,
        "elapsed_s": round(elapsed, 3),
        "statuses": statuses,
        "errors": len(errors),
        "first_errors": errors[:5],
        "client_cpu_ms_per_request": round(1000 * client_cpu / total, 2),
        "acknowledged": acknowledged,
        "acknowledged_per_s": round(acknowledged / elapsed, 2),
        "latency_ms": {
            "p50": round(statistics.median(ms), 2) if ms else None,
            "p99": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2) if ms else None,
            "max": round(ms[-1], 2) if ms else None,
            "max_by_second": [round(max(by_second[k]), 1) for k in sorted(by_second)],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--products", type=int, default=200, help="distinct product ids")
    parser.add_argument("--database-url", help="catalog database (default: a fresh SQLite file)")
    parser.add_argument("--prefect", action="store_true", help="emit events to PREFECT_API_URL")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= MAX_RATE and 0 < args.duration <= MAX_DURATION):
        parser.error(f"keep the burst bounded: 0 < rate <= {MAX_RATE}, 0 < duration <= {MAX_DURATION}")

    from catalog.db import migrate

    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/catalog.db"
        migrate(database_url)
        ctx = multiprocessing.get_context("spawn")
        port_out, result_out, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        child = ctx.Process(target=serve, args=(database_url, args.prefect, port_out, stop, result_out))
        child.start()
        try:
            port = port_out.get(timeout=60)
            time.sleep(0.5)  # uvicorn listens on the socket it was given; let it start serving
            figures = asyncio.run(burst(f"http://127.0.0.1:{port}", args.rate, args.duration, args.products))
        finally:
            stop.set()
            child.join(timeout=30)
        figures.update(result_out.get(timeout=10))
    figures["server_cpu_ms_per_request"] = round(1000 * figures["server_cpu_s"] / figures["sent"], 2)
    figures["load_average_1m"] = os.getloadavg()[0]
    figures["cpu_count"] = os.cpu_count()
    figures["database"] = "sqlite (temporary)" if not args.database_url else args.database_url.split("://")[0]
    figures["emitter"] = "prefect" if args.prefect else "recorded prefect.events.Event"
    lat = figures["latency_ms"]
    print(
        f"sent             {figures['sent']} at {args.rate:g}/s for {args.duration:g} s; "
        f"answers {figures['statuses']}; errors {figures['errors']}"
    )
    print(f"acknowledged/s   {figures['acknowledged_per_s']}")
    print(f"latency p50 ms   {lat['p50']}")
    print(f"latency p99 ms   {lat['p99']}")
    print(f"latency max ms   {lat['max']}")
    print(f"events recorded  {figures['events_recorded']}")
    print(
        f"server CPU       {figures['server_cpu_ms_per_request']} ms per request, client "
        f"{figures['client_cpu_ms_per_request']} ms "
        f"(load average {figures['load_average_1m']:.2f} on {figures['cpu_count']} CPUs)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["errors"] == 0 and figures["acknowledged"] == figures["sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
