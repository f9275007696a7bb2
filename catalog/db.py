"""Engines, sessions and migrations for the catalog database (SQLite or PostgreSQL)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
SUPPORTED = ("sqlite", "postgresql")


class DatabaseUnavailable(RuntimeError):
    """The catalog database cannot be reached or migrated. The message says why."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def check_url(url: str) -> str:
    """Validate a database URL's dialect; return it unchanged.

    The URL may hold a password, so no error here quotes it, nor the parser's message
    (which can quote a piece of it, such as a "port" cut from a password with an ``@``)."""
    parsed = _parse_quietly(url)
    if parsed is None:  # raised outside the except block: no exception context to print
        scheme = url.split("://", 1)[0] if "://" in url else ""
        shown = f"{scheme}://..." if re.fullmatch(r"[a-z0-9+_.-]{1,40}", scheme) else "the value given"
        raise ValueError(
            f"not a database URL ({shown}): use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB, "
            "with special characters in the password percent-encoded"
        )
    if parsed.get_backend_name() not in SUPPORTED:
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        )
    return url


def _parse_quietly(url: str) -> URL | None:
    try:
        return make_url(url)
    except Exception:  # ArgumentError, or ValueError for a port that is no number
        return None


def redacted(url: str) -> str:
    """``url`` with its password masked, for messages and logs; never the raw text of a URL
    that does not parse."""
    parsed = _parse_quietly(url)
    return "(an unparseable database URL)" if parsed is None else parsed.render_as_string(hide_password=True)


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error, say) with ``url`` and its password masked."""
    parsed = _parse_quietly(url)
    for secret in (url, parsed.password if parsed is not None else None):
        if secret:
            text = text.replace(str(secret), "***")
    return text


def _set_wal(cur, wait_s: float = 30.0) -> None:
    """Switch the file to WAL (persistent; a no-op once done). The switch needs the file to
    itself and SQLite answers "database is locked" at once, without its busy handler, when
    two processes open a new catalog together (two CLI runs starting at the same moment):
    retry for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process (pooled connections are reused across tasks)."""
    check_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL lets readers and one writer overlap
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            _set_wal(cur)
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            # A deferred transaction that reads, then writes, must upgrade its lock; two such
            # transactions deadlock and SQLite fails one at once ("database is locked")
            # without waiting. Taking the write lock up front makes them queue instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    engine = get_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except Exception as exc:
        raise DatabaseUnavailable(
            f"cannot migrate catalog database {redacted(url)}: "
            f"{exc.__class__.__name__}: {scrub((str(exc).splitlines() or [''])[0], url)}"
        ) from exc


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error."""
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    with factory() as session:
        with session.begin():
            yield session
