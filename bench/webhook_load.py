"""Load on the Shopify webhook receiver: a bounded, fixed-rate burst of signed deliveries.

The receiver runs with its own uvicorn settings (deployments.webhook.uvicorn_config) on
loopback in a child process (its own interpreter, so the load generator does not share its
GIL) against a fresh SQLite catalog in a temporary folder, or ``--database-url`` (give it
an empty, scratch database: create it anew for each run; rows and dead tuples left by
earlier runs slow the relay's claims, and the script says how many deliveries it found).
Intake is the outbox: each accepted delivery commits its row and its pending event before
the answer, and the relay of the same process (on PostgreSQL a task on the receiver's
event loop, on SQLite a thread) sends the events and marks them sent. By default the relay
hands them to a list in the child (the database work of the outbox is measured, Prefect's
API is not); ``--prefect`` sends them to PREFECT_API_URL. The client sends ``--rate``
requests per second for ``--duration`` seconds (open loop: a slow answer does not slow
the sending), each a products/update for one of ``--products`` products with a unique
webhook id and a newer ``updated_at``.

Latency is measured from each request's *scheduled* send time to its answer, so queueing
in the client or the server is counted, not hidden. The server's CPU (its process, relay
included) is divided by the requests sent. Targets (issue 12, PostgreSQL): ≤ 2 ms of
server CPU per request; p99 ≤ 50 ms at 100 requests/s and ≤ 100 ms at 200 requests/s.

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
    """Child process: the receiver and its relay on a free loopback port until ``stop``."""
    import uvicorn

    from deployments.webhook import create_app, uvicorn_config
    from tasks.events import Relay

    events: list[dict] = []
    relay = Relay(database_url, None if prefect else events.extend)
    app = create_app(get_secret=lambda: SECRET, database_url=database_url, shops=[SHOP], relay=relay)
    # proto IPPROTO_TCP, or asyncio leaves Nagle on for accepted connections (+40 ms each)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", access_log=False))
    threading.Thread(target=lambda: (stop.wait(), setattr(server, "should_exit", True)), daemon=True).start()
    port_out.put(sock.getsockname()[1])
    cpu = time.process_time()
    server.run(sockets=[sock])  # the relay stops with the app; what it had not sent stays pending
    cpu = time.process_time() - cpu
    result_out.put({"events_sent": relay.sent, "server_cpu_s": round(cpu, 3)})


def unsent_events(database_url: str) -> int:
    from catalog.db import session_scope
    from catalog.webhooks import unsent_count

    with session_scope(database_url) as session:
        return unsent_count(session)


def earlier_deliveries(database_url: str) -> int:
    from sqlalchemy import func, select

    from catalog.db import session_scope
    from catalog.models import WebhookDelivery

    with session_scope(database_url) as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0


def delivery(i: int, products: int, start: datetime) -> tuple[bytes, dict[str, str]]:
    pid = int(start.timestamp()) * 10_000 + i % products  # new products each run: none stale
    body = json.dumps(
        {
            "id": pid,
            "title": f"Product {pid}",
            "handle": f"product-{pid}",
            "vendor": "Bench",
            "updated_at": (start - timedelta(minutes=30) + timedelta(milliseconds=i)).isoformat(),
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


def raw_request(port: int, body: bytes, headers: dict[str, str]) -> bytes:
    """One keep-alive HTTP/1.1 POST, serialised before the clock starts."""
    lines = ["POST /webhooks/shopify HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Status code and the JSON ``status`` of one response (Content-Length bodies only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    length = next(int(h.split(":", 1)[1]) for h in header_lines if h.lower().startswith("content-length:"))
    body = await reader.readexactly(length)
    return int(status_line.split()[1]), json.loads(body).get("status")


async def burst(base_url: str, rate: float, duration: float, products: int) -> dict:
    """The load: a small asyncio HTTP/1.1 client over keep-alive connections (at most
    256), so the generator's own CPU stays well under the server's on a small machine."""
    total = int(rate * duration)
    start = datetime.now(UTC)
    port = int(base_url.rsplit(":", 1)[1])
    requests = [raw_request(port, *delivery(i, products, start)) for i in range(total)]  # signed up front
    latencies, statuses, errors, by_second = [], {}, [], {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = 0

    async def one(i: int, due: float) -> None:
        nonlocal opened
        try:
            while idle and idle[-1][0].at_eof():  # closed by the server's keep-alive timeout
                idle.pop()[1].close()
                opened -= 1
            if idle:
                reader, writer = idle.pop()
            else:
                if opened >= 256:
                    raise RuntimeError("256 connections busy")
                opened += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writer.write(requests[i])
            code, status = await asyncio.wait_for(answer(reader), 10)
        except (TimeoutError, OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
            errors.append(f"{exc.__class__.__name__}: {exc}")
            return
        idle.append((reader, writer))
        latencies.append(time.perf_counter() - due)
        by_second.setdefault(int(i / rate), []).append(latencies[-1] * 1000)
        key = f"{code} {status}"
        statuses[key] = statuses.get(key, 0) + 1

    t0, cpu0 = time.perf_counter(), time.process_time()
    tasks = []
    for i in range(total):
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed, client_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for _, writer in idle:
        writer.close()
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
    parser.add_argument("--prefect", action="store_true", help="the relay sends to PREFECT_API_URL")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= MAX_RATE and 0 < args.duration <= MAX_DURATION):
        parser.error(f"keep the burst bounded: 0 < rate <= {MAX_RATE}, 0 < duration <= {MAX_DURATION}")

    from catalog.db import migrate

    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/catalog.db"
        migrate(database_url)
        earlier = earlier_deliveries(database_url)
        if earlier:
            print(f"note: the database holds {earlier} deliveries from earlier runs; give it a new one for figures")
        ctx = multiprocessing.get_context("spawn")
        port_out, result_out, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        child = ctx.Process(target=serve, args=(database_url, args.prefect, port_out, stop, result_out))
        child.start()
        try:
            port = port_out.get(timeout=60)
            time.sleep(0.5)  # uvicorn listens on the socket it was given; let it start serving
            figures = asyncio.run(burst(f"http://127.0.0.1:{port}", args.rate, args.duration, args.products))
            deadline = time.monotonic() + 30  # let the relay send what the burst left pending
            while unsent_events(database_url) and time.monotonic() < deadline:
                time.sleep(0.2)
            figures["events_unsent"] = unsent_events(database_url)
        finally:
            stop.set()
            child.join(timeout=30)
        figures.update(result_out.get(timeout=10))
    figures["server_cpu_ms_per_request"] = round(1000 * figures["server_cpu_s"] / figures["sent"], 2)
    figures["load_average_1m"] = os.getloadavg()[0]
    figures["cpu_count"] = os.cpu_count()
    figures["database"] = "sqlite (temporary)" if not args.database_url else args.database_url.split("://")[0]
    figures["earlier_deliveries"] = earlier
    figures["relay_sends_to"] = "PREFECT_API_URL" if args.prefect else "a list in the receiver process"
    lat = figures["latency_ms"]
    print(
        f"sent             {figures['sent']} at {args.rate:g}/s for {args.duration:g} s; "
        f"answers {figures['statuses']}; errors {figures['errors']}"
    )
    print(f"acknowledged/s   {figures['acknowledged_per_s']}")
    print(f"latency p50 ms   {lat['p50']}")
    print(f"latency p99 ms   {lat['p99']}")
    print(f"latency max ms   {lat['max']}")
    print(f"events sent      {figures['events_sent']} by the relay, {figures['events_unsent']} left unsent")
    print(
        f"server CPU       {figures['server_cpu_ms_per_request']} ms per request, client "
        f"{figures['client_cpu_ms_per_request']} ms "
        f"(load average {figures['load_average_1m']:.2f} on {figures['cpu_count']} CPUs)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    complete = figures["events_unsent"] == 0 and figures["events_sent"] == figures["statuses"].get("200 accepted")
    return 0 if figures["errors"] == 0 and figures["acknowledged"] == figures["sent"] and complete else 1


if __name__ == "__main__":
    sys.exit(main())
