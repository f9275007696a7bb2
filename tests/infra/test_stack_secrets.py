"""infra/stack.py's files and the receiver's process: the home and its folders are 0700,
the webhook secret file is made 0600 without following a symlink planted at its name, and
the receiver gets the catalog URL in its environment (not its command line) and none of
the other secrets. Real files and real processes; no server is started."""

import os
import stat
import subprocess
import sys

import pytest

from infra.secret_file import ensure_secret_file
from infra.stack import Stack, StackError

DB_URL = "postgresql+psycopg://lightbox:db-pass-123@127.0.0.1:5432/lightbox"
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
    "MINIO_ROOT_PASSWORD": "minio-root-pw",
    "LIGHTBOX_SHOPIFY_ACCESS_TOKEN": "shpat_token_value",
    "PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://lightbox:server-db-pw@db/prefect",
    "POSTGRES_PASSWORD": "superuser-pw",
}


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def stack(tmp_path):
    env = {"LIGHTBOX_STACK_HOME": str(tmp_path / "stack"), "LIGHTBOX_DATABASE_URL": DB_URL, **SECRETS}
    env["PATH"] = os.environ["PATH"]
    return Stack(env)


def test_the_stack_folders_are_private(stack):
    old = os.umask(0o022)
    try:
        stack.logs.mkdir(parents=True)  # made by an older version, 0755
        stack.make_folders()
    finally:
        os.umask(old)
    for folder in (stack.home, stack.logs, stack.pids, stack.data, stack.home / "prefect"):
        assert _mode(folder) == 0o700, folder


def test_a_generated_secret_is_0600_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        ensure_secret_file(tmp_path / "webhook-secret", None)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "webhook-secret") == 0o600
    first = (tmp_path / "webhook-secret").read_text()
    ensure_secret_file(tmp_path / "webhook-secret", None)
    assert (tmp_path / "webhook-secret").read_text() == first and len(first) >= 32  # kept, not regenerated


@pytest.mark.parametrize("given", ["whsec-given", None])
def test_a_planted_symlink_is_refused_not_written_through(stack, given):
    """The secret was written with os.open(O_CREAT|O_TRUNC), which follows a symlink: a
    link planted at the secret's name sent the secret into the link's target."""
    stack.make_folders()
    target = stack.home.parent / "elsewhere"
    target.write_text("someone else's file\n")
    stack.secret_file.symlink_to(target)
    if given:
        stack.base_env["LIGHTBOX_SHOPIFY_WEBHOOK_SECRET"] = given
    with pytest.raises(StackError, match="not a regular file"):
        stack.ensure_secret()
    assert target.read_text() == "someone else's file\n"


def test_a_given_secret_is_written_0600(stack):
    stack.make_folders()
    stack.secret_file.write_text("old")
    os.chmod(stack.secret_file, 0o644)
    stack.base_env["LIGHTBOX_SHOPIFY_WEBHOOK_SECRET"] = "whsec-given"
    stack.ensure_secret()
    assert stack.secret_file.read_text() == "whsec-given" and _mode(stack.secret_file) == 0o600
    assert [p.name for p in stack.home.iterdir() if p.name.startswith(".")] == []  # no staged copy left


def test_an_old_wide_secret_file_is_narrowed(stack):
    stack.make_folders()
    stack.secret_file.write_text("old-secret")
    os.chmod(stack.secret_file, 0o644)
    stack.ensure_secret()
    assert _mode(stack.secret_file) == 0o600 and stack.secret_file.read_text() == "old-secret"


def test_the_receiver_gets_the_url_by_environment_and_no_other_secret(stack):
    """`ps` showed the receiver's --database-url, password and all; and its environment held
    the S3 keys, the Shopify token and the Prefect server's database URL."""
    argv, env = stack.receiver_argv(), stack.receiver_env()
    assert not any("db-pass-123" in arg for arg in argv)
    assert "--database-url" not in argv
    assert env["LIGHTBOX_DATABASE_URL"] == DB_URL
    for name, value in SECRETS.items():
        assert name not in env and value not in "".join(env.values()), name
    # the real process: what it can see
    code = "import os, sys; sys.stdout.write(repr(sorted(os.environ.items())) + repr(sys.argv))"
    seen = subprocess.run([sys.executable, "-c", code, *argv[1:]], env=env, capture_output=True, text=True).stdout
    assert "db-pass-123" in seen  # by environment, where it belongs
    for value in SECRETS.values():
        assert value not in seen
