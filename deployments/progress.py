"""``lightbox run``'s progress, read from the catalog database while the batch runs.

A daemon thread polls the batch's SKU rows every half second with an engine of its own
(reads only). On a terminal one line is redrawn in place::

    [########------------]  4/7  exported 1 · rejected 1 · failed 2  processing  0:12, ~0:09 left

otherwise one line is printed per SKU as it reaches a final state (CI logs, files)::

    [  3/7] failed    BROKEN-NOT-IMAGE  validate: not an image (...)

The batch is found by name: the newest batch with the run's name that was not there
before the run started (two runs with one name on one database at once may mix up).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError

from catalog.models import Batch, Sku
from deployments.cli_logging import TERMINAL_LOCK

FINAL = ("exported", "rejected", "failed")
BAR = 20
REASON_CHARS = 120


@dataclass(frozen=True)
class SkuRow:
    position: int
    sku: str
    state: str
    reason: str | None


@dataclass(frozen=True)
class Snapshot:
    batch_state: str
    skus: list[SkuRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {state: sum(s.state == state for s in self.skus) for state in FINAL}


def batch_ids(engine, name: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(Batch.id).where(Batch.name == name)))


def read_snapshot(engine, name: str, known: set[str]) -> Snapshot | None:
    """The newest batch called ``name`` not in ``known``, with its SKUs; None before it exists."""
    with engine.connect() as conn:
        rows = conn.execute(select(Batch.id, Batch.state).where(Batch.name == name).order_by(Batch.created_at.desc()))
        found = next((r for r in rows if r.id not in known), None)
        if found is None:
            return None
        skus = conn.execute(
            select(Sku.position, Sku.sku, Sku.state, Sku.reason).where(Sku.batch_id == found.id).order_by(Sku.position)
        )
        return Snapshot(found.state, [SkuRow(*row) for row in skus])


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


class ProgressPrinter:
    """Turns snapshots into output: a live line on a terminal, else a line per finished SKU."""

    def __init__(self, stream: TextIO, *, live: bool, now: Callable[[], float] = time.monotonic):
        self.stream, self.live, self.now = stream, live, now
        self.started = now()
        self.reported: set[int] = set()
        self.base: tuple[float, int] | None = None  # (time, SKUs done) when rendering began
        self.shown = ""

    def update(self, snap: Snapshot) -> None:
        if self.live:
            self._redraw(self.bar_line(snap))
            return
        total = len(snap.skus)
        for row in snap.skus:
            if row.state in FINAL and row.position not in self.reported:
                self.reported.add(row.position)
                self.stream.write(self.sku_line(row, len(self.reported), total) + "\n")
        self.stream.flush()

    def sku_line(self, row: SkuRow, done: int, total: int) -> str:
        width = len(str(total))
        reason = " ".join((row.reason or "").split())
        if len(reason) > REASON_CHARS:
            reason = reason[: REASON_CHARS - 3] + "..."
        return f"[{done:>{width}}/{total}] {row.state:<9} {row.sku}  {reason}".rstrip()

    def bar_line(self, snap: Snapshot) -> str:
        counts = snap.counts()
        total, done = len(snap.skus), sum(counts.values())
        filled = round(BAR * done / total) if total else 0
        now = self.now()
        elapsed = now - self.started
        if self.base is None and snap.batch_state not in ("created", "validating"):
            self.base = (now, done)  # photos that fail validation take no time: rate after that
        eta = ""
        if self.base is not None and self.base[1] < done < total:
            rate = (now - self.base[0]) / (done - self.base[1])
            eta = f", ~{clock(rate * (total - done))} left"
        tally = " · ".join(f"{state} {n}" for state, n in counts.items())
        bar = "#" * filled + "-" * (BAR - filled)
        return f"[{bar}] {done:>3}/{total}  {tally}  {snap.batch_state}  {clock(elapsed)}{eta}"

    def _redraw(self, line: str) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = line[:width]
        self.stream.write("\r" + line.ljust(len(self.shown)))
        self.stream.flush()
        self.shown = line

    def clear(self) -> None:
        """Blank the live line (before a log line is printed); the next update redraws it."""
        if self.live and self.shown:
            self.stream.write("\r" + " " * len(self.shown) + "\r")
            self.stream.flush()
            self.shown = ""

    def close(self) -> None:
        if self.live and self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = ""


class ProgressWatcher(threading.Thread):
    """Polls the catalog for the batch named ``name`` and feeds ``printer`` until stopped."""

    def __init__(self, database_url: str, name: str, printer: ProgressPrinter, interval: float = 0.5):
        super().__init__(name="lightbox-progress", daemon=True)
        self.engine = create_engine(database_url, pool_size=1, max_overflow=0)
        self.name_, self.printer, self.interval = name, printer, interval
        self.known = batch_ids(self.engine, name)  # batches with this name from earlier runs
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        try:
            snap = read_snapshot(self.engine, self.name_, self.known)
        except SQLAlchemyError:
            return  # a busy or restarting database: the next poll tries again
        if snap is not None:
            with self.lock, TERMINAL_LOCK:
                self.printer.update(snap)

    def stop(self) -> None:
        """Stop polling, print what the batch reached and end the live line."""
        self.halt.set()
        if self.is_alive():
            self.join(timeout=5)
        self.poll()
        self.printer.close()
        self.engine.dispose()
