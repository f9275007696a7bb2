"""catalog/db.py: engines and migration, with real processes racing on one SQLite file."""

import subprocess
import sys
import traceback

import pytest

from catalog.db import DatabaseUnavailable, check_url, migrate, redacted, scrub
from tests.conftest import REPO


def test_two_processes_creating_one_sqlite_catalog_at_once(tmp_path):
    """Two `lightbox run`s that start together both migrate a new SQLite file; switching it
    to WAL answered "database is locked" at once to one of them (4 rounds in 12 before)."""
    code = "import sys; from catalog.db import migrate; migrate(sys.argv[1])"
    for round_ in range(8):
        url = f"sqlite:///{tmp_path / f'catalog-{round_}.db'}"
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], cwd=REPO, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), errors


@pytest.mark.parametrize(
    "url,secret",
    [
        ("postgresql+psycopg://lightbox:s3cr3t-pw@db:notaport/lightbox", "s3cr3t-pw"),
        ("postgresql+psycopg://lightbox:pw-p@rt:w0rd-9@db:5432/lightbox", "w0rd-9"),
        ("lightbox:s3cr3t-pw@db/lightbox", "s3cr3t-pw"),
        ("postgresql+psycopg://lightbox:s3cr3t-pw@[::1/lightbox", "s3cr3t-pw"),
    ],
)
def test_check_url_never_quotes_the_url(url, secret):
    """`not a database URL: 'postgresql+psycopg://lightbox:s3cr3t-pw@...'` went to logs and
    to bootstrap's stderr."""
    with pytest.raises(ValueError, match="not a database URL") as caught:
        check_url(url)
    shown = "".join(traceback.format_exception(caught.value))
    assert secret not in shown and "pw-p" not in shown


def test_a_migration_failure_names_the_database_without_its_password(tmp_path):
    url = "postgresql+psycopg://lightbox:s3cr3t-pw@127.0.0.1:1/lightbox"  # nothing listens on port 1
    with pytest.raises(DatabaseUnavailable) as caught:
        migrate(url)
    assert "127.0.0.1:1/lightbox" in str(caught.value) and "s3cr3t-pw" not in str(caught.value)
    assert redacted(url) == "postgresql+psycopg://lightbox:***@127.0.0.1:1/lightbox"
    assert scrub("auth failed for s3cr3t-pw", url) == "auth failed for ***"


def test_unsupported_dialects_are_named():
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        check_url("mysql://u:s3cr3t-pw@db/x")
