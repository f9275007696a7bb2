"""Migration 0002 on a database that already holds 0001 data: columns added with their
defaults, rows kept, and one review decision per SKU and round enforced; it downgrades."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from catalog.db import alembic_config, get_engine


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


def test_0002_adds_review_and_shopify_columns_to_existing_data(empty_url):
    _alembic(empty_url, command.upgrade, "0001")
    with get_engine(empty_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO batches (id, name, manifest_path, manifest_sha256, template, profiles, "
                "review_policy, state, created_at, updated_at) VALUES ('b', 'n', 'm', 's', 't', '[]', "
                "'auto', 'done', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO skus (id, batch_id, position, sku, dirname, template, priority, state, "
                "attempts, timings, created_at, updated_at) VALUES (1, 'b', 0, 'A', 'A', 't', "
                "'standard', 'exported', 1, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    _alembic(empty_url, command.upgrade, "head")
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("skus")}
    assert {"shopify_product_id", "review_item"} <= columns
    with get_engine(empty_url).begin() as conn:
        assert conn.execute(text("SELECT review_round FROM batches")).scalar_one() == 0
        assert conn.execute(text("SELECT shopify_product_id, review_item FROM skus")).one() == (None, None)
        insert = text(
            "INSERT INTO review_decisions (sku_id, round, decision, reviewer, decided_at) "
            "VALUES (1, 1, :d, 'ana', CURRENT_TIMESTAMP)"
        )
        conn.execute(insert, {"d": "approve"})
    with pytest.raises(IntegrityError), get_engine(empty_url).begin() as conn:
        conn.execute(insert, {"d": "reject"})
    _alembic(empty_url, command.downgrade, "0001")
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("skus")}
    assert "review_item" not in columns and "shopify_product_id" not in columns
