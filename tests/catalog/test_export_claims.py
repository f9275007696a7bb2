"""Export claims take a lease per destination key by compare-and-set (catalog/exports.py):
a live lease is never taken over, an expired one (its owner killed) is, the holder renews
or completes, and a holder whose lease was taken over cannot record the upload. SQLite and
PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select

from catalog import repository as repo
from catalog.db import alembic_config, get_engine, session_scope
from catalog.manifest import ManifestEntry
from catalog.models import Export, ExportLease

REPO = Path(__file__).resolve().parents[2]
SLOT = {"destination": "local:/out", "key": "A/shopify.jpg"}


def sku_row(url: str) -> int:
    with session_scope(url) as s:
        repo.create_batch(
            s,
            batch_id="b",
            name="t",
            manifest_path="m.csv",
            manifest_sha256="0" * 64,
            template="white_studio",
            profiles=["shopify"],
            review_policy="auto",
        )
        (row,) = repo.add_skus(s, "b", [ManifestEntry(1, "A", Path("a.png"))], "white_studio")
        return row.id


def claim(url: str, sku_id: int, owner: str, *, sha: str = "c" * 64, lease_s: float = 60) -> repo.ExportClaim:
    with session_scope(url) as s:
        return repo.claim_export(
            s,
            sku_id=sku_id,
            render_id=None,
            profile="shopify",
            content_sha256=sha,
            size=10,
            owner=owner,
            lease_s=lease_s,
            **SLOT,
        )


def complete(url: str, export_id: int, owner: str) -> None:
    with session_scope(url) as s:
        repo.complete_export(s, export_id, "ext-1", owner=owner)


def test_a_live_lease_is_not_taken_over_and_its_holder_completes(database_url):
    sku = sku_row(database_url)
    first = claim(database_url, sku, "worker-a")
    assert first.state == "claimed" and not first.recover
    second = claim(database_url, sku, "worker-b")
    assert second.state == "busy" and second.holder == "worker-a" and second.expires_at is not None
    with pytest.raises(repo.ExportLeaseLost), session_scope(database_url) as s:
        repo.complete_export(s, first.export_id, "x", owner="worker-b")  # not its lease
    with session_scope(database_url) as s:
        assert repo.renew_export_lease(s, owner="worker-a", lease_s=60, **SLOT)
        assert not repo.renew_export_lease(s, owner="worker-b", lease_s=60, **SLOT)
    complete(database_url, first.export_id, "worker-a")
    again = claim(database_url, sku, "worker-b")
    assert again.state == "done" and again.external_id == "ext-1" and again.export_id == first.export_id
    with session_scope(database_url) as s:
        lease = s.scalar(select(ExportLease))
        assert (lease.owner, lease.expires_at) == (None, None)  # completing frees the key


def test_other_bytes_for_the_same_key_wait_for_the_same_lease(database_url):
    sku = sku_row(database_url)
    assert claim(database_url, sku, "worker-a", sha="a" * 64).state == "claimed"
    other = claim(database_url, sku, "worker-b", sha="b" * 64)
    assert other.state == "busy" and other.holder == "worker-a"
    with session_scope(database_url) as s:
        assert repo.release_export_lease(s, owner="worker-a", **SLOT)  # the upload failed
    after = claim(database_url, sku, "worker-b", sha="b" * 64)
    assert after.state == "claimed" and after.recover  # worker-a left the key unfinished
    retry = claim(database_url, sku, "worker-a", sha="a" * 64)
    assert retry.state == "busy" and retry.holder == "worker-b"


def test_a_killed_owners_lease_is_taken_over_only_once_it_expires(database_url):
    sku = sku_row(database_url)
    script = textwrap.dedent(
        f"""
        import sys, time
        from catalog import repository as repo
        from catalog.db import session_scope
        with session_scope({database_url!r}) as s:
            c = repo.claim_export(s, sku_id={sku}, render_id=None, profile="shopify", content_sha256="c" * 64,
                                  size=10, owner="killed-worker", lease_s=3, **{SLOT!r})
        print(c.state, flush=True)
        time.sleep(600)  # "uploading" until killed
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "claimed"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed_at = time.monotonic()
        live = claim(database_url, sku, "worker-b")
        assert live.state == "busy" and live.holder == "killed-worker"  # dead, but not expired yet
        while (taken := claim(database_url, sku, "worker-b")).state == "busy":
            assert time.monotonic() - killed_at < 10, "the expired lease was never taken over"
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait(10)
    assert taken.state == "claimed" and taken.recover  # the dead worker's attempt is cleaned up
    assert time.monotonic() - killed_at >= 1.5  # not before its lease ran out
    with pytest.raises(repo.ExportLeaseLost, match="worker-b took the key over"):
        complete(database_url, taken.export_id, "killed-worker")
    complete(database_url, taken.export_id, "worker-b")
    with session_scope(database_url) as s:
        assert [r.status for r in s.scalars(select(Export))] == ["done"]


def test_migration_0004_adds_and_removes_the_lease_table(database_url):
    def alembic(action, revision: str) -> None:
        with get_engine(database_url).begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            action(cfg, revision)

    alembic(command.downgrade, "0003")
    assert "export_leases" not in inspect(get_engine(database_url)).get_table_names()
    alembic(command.upgrade, "head")
    columns = {c["name"] for c in inspect(get_engine(database_url)).get_columns("export_leases")}
    assert columns == {"id", "destination", "destination_key", "owner", "expires_at", "export_id"}
