"""One Shopify shop's Admin API rate limit, shared by every process of the fleet.

Shopify meters the GraphQL Admin API per app and shop with a leaky bucket: up to
``maximumAvailable`` cost points, refilled at ``restoreRate`` points a second (each answer's
``extensions.cost.throttleStatus``). Every worker and flow-run process of Lightbox spends
from that one bucket, so a process that only knows its own spending overdraws it as soon as
a second one calls the same shop.

The shared bucket is a Prefect global concurrency limit ``shopify-api:<shop>`` used as a
rate limit: its ``limit`` is the bucket's size, ``slot_decay_per_second`` the restore rate,
and a call first takes its cost in slots (``prefect.concurrency.sync.rate_limit``, which
waits while the slots are taken). The server keeps the count, updating it atomically, so
it is one bucket for every process and machine that talks to the same Prefect server; no
other infrastructure is needed. The limit is created (or corrected, when the shop's plan
changes its numbers) from the first ``throttleStatus`` a process sees, with the points
Shopify says are already spent counted as taken.

What the limit cannot know is a call's cost before the first answer for that operation:
a call takes what the operation cost last time in this process (10 at first) and pays any
difference once Shopify's answer names the cost (``settle``), so the next call waits for it.
Shopify's own THROTTLED answer stays the backstop (``ShopifyStore._with_retries``).

Without a Prefect server (``PREFECT_API_URL`` unset: the CLI's temporary server, a notebook)
there is no fleet and each process keeps its own view (``ShopifyStore._await_budget``). If
the server cannot be reached the block says so once in the log and goes on without it.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import httpx

from blocks.destinations import block_logger

PREFIX = "shopify-api:"
ACQUIRE_TIMEOUT_S = 600.0  # far above a full bucket's refill; a longer wait means something is wrong


class RateLimitWaitTooLong(RuntimeError):
    """The shared bucket did not free the points within ACQUIRE_TIMEOUT_S."""


def fleet_available() -> bool:
    """A Prefect server is configured (not the temporary one a lone process would start)."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


class FleetBucket:
    """The global concurrency limit of one shop, as seen from one process."""

    def __init__(self, shop_domain: str) -> None:
        self.name = f"{PREFIX}{shop_domain}"
        self.limit: int | None = None  # slots of the limit once it is known to exist
        self._decay: float | None = None
        self._off = False  # the Prefect API failed: go on with the process's own view
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return not self._off

    def take(self, points: float) -> int:
        """Wait until the shop's bucket holds ``points`` and take them; returns the slots taken
        (0 when the limit does not exist yet or the fleet is off)."""
        if self._off:
            return 0
        if self.limit is None and not self._read():
            return 0
        slots = max(1, min(self.limit, math.ceil(points)))
        return self._rate_limit(slots)

    def settle(self, taken: int, throttle: dict[str, Any] | None, cost: float | None) -> None:
        """After Shopify's answer: make sure the limit matches the shop's bucket, and take the
        part of the call's cost that was not taken beforehand."""
        if self._off or not throttle:
            return
        try:
            maximum, rate = int(float(throttle["maximumAvailable"])), float(throttle["restoreRate"])
            spent = maximum - float(throttle["currentlyAvailable"])
        except (KeyError, TypeError, ValueError):
            return
        if maximum < 1 or rate <= 0:
            return
        if (self.limit, self._decay) != (maximum, rate):
            made = self._ensure(maximum, rate, spent)
            if made is None or made:  # failed; or made, its slots what Shopify says is spent (this call too)
                return
        if cost is not None and cost > taken:
            self._rate_limit(max(1, min(maximum, math.ceil(cost - taken))))

    # --- the Prefect API ---------------------------------------------------------------
    def _read(self) -> bool:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            with get_client(sync_client=True) as client:
                found = client.read_global_concurrency_limit_by_name(self.name)
        except ObjectNotFound:
            return False
        except Exception as exc:  # noqa: BLE001 (any API failure: said once, then the local view)
            return self._give_up(exc)
        if not found.slot_decay_per_second:  # not a rate limit: someone else's limit by that name
            return self._give_up(ValueError(f"{self.name} has no slot decay, so it is no rate limit"))
        self.limit, self._decay = found.limit, found.slot_decay_per_second
        return True

    def _ensure(self, maximum: int, rate: float, spent: float) -> bool | None:
        """Create or correct the limit: True when this call created it, False when it was
        there (and is right now), None when the Prefect API failed."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
        from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

        with self._lock:
            try:
                with get_client(sync_client=True) as client:
                    try:
                        found = client.read_global_concurrency_limit_by_name(self.name)
                    except ObjectNotFound:
                        taken, created = max(0, min(maximum, math.ceil(spent))), True
                        try:
                            client.create_global_concurrency_limit(
                                GlobalConcurrencyLimitCreate(
                                    name=self.name, limit=maximum, slot_decay_per_second=rate, active_slots=taken
                                )
                            )
                            block_logger(__name__).info(
                                "created the rate limit %s: %d points, %.1f a second", self.name, maximum, rate
                            )
                        except ObjectAlreadyExists:  # another process just made it, from its own answer
                            created = False
                    else:
                        created = False
                        if (found.limit, found.slot_decay_per_second) != (maximum, rate):
                            client.update_global_concurrency_limit(
                                self.name,
                                GlobalConcurrencyLimitUpdate(limit=maximum, slot_decay_per_second=rate, active=True),
                            )
                            block_logger(__name__).info(
                                "updated the rate limit %s: %d points, %.1f a second", self.name, maximum, rate
                            )
            except Exception as exc:  # noqa: BLE001
                self._give_up(exc)
                return None
            self.limit, self._decay = maximum, rate
            return created

    def _rate_limit(self, slots: int) -> int:
        from prefect.concurrency.sync import rate_limit

        try:
            rate_limit(self.name, occupy=slots, timeout_seconds=ACQUIRE_TIMEOUT_S, strict=True)
        except TimeoutError as exc:
            raise RateLimitWaitTooLong(
                f"the shared Shopify rate limit {self.name} had no {slots} points free for {ACQUIRE_TIMEOUT_S:.0f} s"
            ) from exc
        except Exception as exc:  # noqa: BLE001
            if "must be created" in str(exc):  # deleted meanwhile: made again from the next answer
                self.limit = self._decay = None
            else:
                self._give_up(exc)
            return 0
        return slots

    def _give_up(self, exc: BaseException) -> bool:
        if not self._off:
            detail = f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else str(exc)[:200]
            block_logger(__name__).warning(
                "the shared Shopify rate limit %s is unavailable (%s: %s): this process paces its calls alone",
                self.name,
                type(exc).__name__,
                detail,
            )
        self._off = True
        self.limit = None
        return False
