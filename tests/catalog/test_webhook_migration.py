"""Migration 0003 (event outbox, delivery dedupe on content and Shopify event id) on a
catalog that already holds 0002 deliveries, replays included: the upgrade keeps them, new
deliveries are deduplicated, and it downgrades."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text

from catalog.db import alembic_config, get_engine, session_scope
from catalog.webhooks import record_delivery


def _alembic(url: str, action, revision: str) -> None:
    with get_engine(url).begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        action(cfg, revision)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    from tests.conftest import _reset_pg

    url = request.getfixturevalue("pg_server_url")
    _reset_pg(url)
    return url


INSERT = text(
    "INSERT INTO webhook_deliveries (webhook_id, shop, topic, product_id, received_at, payload_sha256, status) "
    "VALUES (:w, 's.myshopify.com', 'products/update', '42', CURRENT_TIMESTAMP, :sha, 'accepted')"
)


def test_0003_keeps_old_replays_and_dedupes_new_deliveries(empty_url):
    _alembic(empty_url, command.upgrade, "0002")
    with get_engine(empty_url).begin() as conn:  # a captured body replayed under two webhook ids
        conn.execute(INSERT, {"w": "old-1", "sha": "a" * 64})
        conn.execute(INSERT, {"w": "old-2", "sha": "a" * 64})
    _alembic(empty_url, command.upgrade, "0003")
    inspector = inspect(get_engine(empty_url))
    assert {"content_key", "shopify_event_id"} <= {c["name"] for c in inspector.get_columns("webhook_deliveries")}
    assert "event_outbox" in inspector.get_table_names()
    with get_engine(empty_url).begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhook_deliveries WHERE content_key IS NULL")).scalar() == 2

    def record(webhook_id: str) -> str:
        with session_scope(empty_url) as session:
            return record_delivery(
                session,
                webhook_id=webhook_id,
                shop="s.myshopify.com",
                topic="products/update",
                product_id="42",
                triggered_at=None,
                product_updated_at=datetime(2026, 12, 1, tzinfo=UTC),
                payload_sha256="b" * 64,
                now=datetime(2026, 12, 1, tzinfo=UTC),
                event={"id": f"event-{webhook_id}"},
            )

    assert record("new-1") == "accepted"
    assert record("new-2") == "duplicate"
    with get_engine(empty_url).begin() as conn:
        assert conn.execute(text("SELECT event_id FROM event_outbox")).scalars().all() == ["event-new-1"]
    _alembic(empty_url, command.downgrade, "0002")
    inspector = inspect(get_engine(empty_url))
    assert "event_outbox" not in inspector.get_table_names()
    assert "content_key" not in {c["name"] for c in inspector.get_columns("webhook_deliveries")}
