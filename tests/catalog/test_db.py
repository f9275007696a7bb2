"""catalog/db.py: engines and migration, with real processes racing on one SQLite file."""

import subprocess
import sys

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
