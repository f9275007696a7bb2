"""Deliver one image to one destination exactly once: claim, put, complete, under a lease.

The destination is anything with the export surface of ``blocks.destinations``
(``destination_id``, ``put``, ``cleanup_partial``); this module never imports it, so the
protocol stays in the domain layer (docs/ARCHITECTURE.md#storage):

1. ``claim_export`` finds or creates the export row and takes the key's lease by
   compare-and-set. ``done``: nothing to do. ``busy``: another worker holds a live lease,
   so wait (backing off) until it completes, gives up or its lease expires; only an
   expired lease is taken over.
2. A claim that follows an unfinished attempt (a crash, a failed put, an expired lease)
   first calls ``cleanup_partial``: temporary files, open S3 multipart uploads, Shopify
   media that FAILED processing. Safe only because the lease is held.
3. ``put`` runs while a heartbeat thread renews the lease every third of its length.
4. ``complete_export`` marks the row done and frees the key only if this worker still holds
   the lease. A put that raises frees the key at once, so the next attempt need not wait.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from catalog import exports as claims
from catalog.db import session_scope

LEASE_S = 60.0  # a crashed worker's keys are free again after this long
BUSY_WAIT_S = 900.0  # how long to wait for another worker's live lease before giving up
_POLL_CAP_S = 5.0
log = logging.getLogger(__name__)


class ExportBusy(RuntimeError):
    """Another worker kept the key's lease alive for longer than we were willing to wait."""


@dataclass(frozen=True)
class Delivered:
    export_id: int
    sha256: str
    external_id: str | None
    skipped: bool  # found done: nothing was uploaded


def new_owner() -> str:
    """A lease owner id: host and pid (for people reading the table) plus a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def deliver(
    destination: Any,
    database_url: str,
    *,
    sku_id: int,
    render_id: int | None,
    profile: str,
    key: str,
    data: bytes,
    content_type: str,
    context: Any,
    lease_s: float = LEASE_S,
) -> Delivered:
    """Claim -> (clean up) -> put -> complete; see the module docstring."""
    sha = hashlib.sha256(data).hexdigest()
    owner = new_owner()
    slot = {"destination": destination.destination_id, "key": key}
    what = f"SKU {getattr(context, 'sku', sku_id)!r}: {key} to {destination.destination_id}"
    claim = _claim(
        database_url,
        what,
        sku_id=sku_id,
        render_id=render_id,
        profile=profile,
        content_sha256=sha,
        size=len(data),
        owner=owner,
        lease_s=lease_s,
        **slot,
    )
    if claim.state == "done":
        return Delivered(claim.export_id, sha, claim.external_id, skipped=True)
    try:
        with Heartbeat(database_url, owner=owner, lease_s=lease_s, **slot):
            if claim.recover:
                cleaned = destination.cleanup_partial(key, sha, context)
                if cleaned:
                    log.info("%s: cleaned up after an unfinished attempt: %s", what, cleaned)
            external_id = destination.put(key, data, content_type=content_type, sha256=sha, context=context)
    except BaseException as exc:
        _release(database_url, owner, exc, **slot)
        raise
    with session_scope(database_url) as s:
        claims.complete_export(s, claim.export_id, external_id, owner=owner)
    return Delivered(claim.export_id, sha, external_id, skipped=False)


def _claim(database_url: str, what: str, **claim_args) -> claims.ExportClaim:
    deadline = time.monotonic() + BUSY_WAIT_S
    delay = 0.1
    while True:
        with session_scope(database_url) as s:
            claim = claims.claim_export(s, **claim_args)
        if claim.state != "busy":
            return claim
        left = deadline - time.monotonic()
        if left <= 0:
            raise ExportBusy(
                f"{what}: {claim.holder} still held the key's lease after {BUSY_WAIT_S:.0f} s of waiting "
                f"(until {claim.expires_at}); not uploading alongside it"
            )
        log.info("%s: %s holds the key's lease until %s; waiting", what, claim.holder, claim.expires_at)
        time.sleep(min(delay, left))
        delay = min(delay * 2, _POLL_CAP_S)


def _release(database_url: str, owner: str, failure: BaseException, **slot) -> None:
    """Free the key after a failed put; a failure to do so is noted on the put's error (the
    lease then simply expires)."""
    try:
        with session_scope(database_url) as s:
            claims.release_export_lease(s, owner=owner, **slot)
    except Exception as exc:  # the put's own error is the one to raise
        failure.add_note(f"the export lease was not released ({type(exc).__name__}); it expires by itself")


class Heartbeat:
    """Renews a lease every ``lease_s / 3`` on a daemon thread until the block exits.

    A renewal that finds the lease gone stops the heartbeat; ``complete_export`` then refuses
    to record the upload (``ExportLeaseLost``). A renewal that cannot reach the database is
    retried at the next beat; its error is logged with the lease it concerns.
    """

    def __init__(self, database_url: str, *, destination: str, key: str, owner: str, lease_s: float) -> None:
        self.database_url, self.owner, self.lease_s = database_url, owner, lease_s
        self.slot = {"destination": destination, "key": key}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{key}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with session_scope(self.database_url) as s:
                    held = claims.renew_export_lease(s, owner=self.owner, lease_s=self.lease_s, **self.slot)
            except Exception as exc:  # the database is away: the next beat tries again
                first_line = (str(exc).splitlines() or [""])[0][:200]
                log.warning("lease on %s not renewed: %s: %s", self.slot["key"], type(exc).__name__, first_line)
                continue
            if not held:
                log.warning("lease on %s was taken over by another worker", self.slot["key"])
                return
