"""infra/compose.yaml (and its GPU override) without Docker, which cannot run here: the
files parse, every file they reference exists, services depend on services that exist,
secrets come only from infra/.env interpolation, and the names the Docker work-pool
templates rely on (network, volumes) are the ones compose creates."""

import os
import re
from pathlib import Path

import pytest
import yaml

from infra.bootstrap import template_for

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "compose.yaml"
GPU = INFRA / "compose.gpu.yaml"
INTERPOLATION = re.compile(r"(?<!\$)\$\{(\w+)(?::?[-?][^}]*)?\}")  # $${X} is for the shell


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_of_the_stack(compose):
    assert set(compose["services"]) == {
        "postgres",
        "minio",
        "minio-setup",
        "prefect-server",
        "bootstrap",
        "worker-cpu",
        "worker-gpu",
        "webhook",
    }
    commands = {
        name: " ".join(s.get("command", [])) if isinstance(s.get("command"), list) else s.get("command", "")
        for name, s in compose["services"].items()
    }
    assert "--pool lightbox-cpu" in commands["worker-cpu"]
    assert "--pool lightbox-gpu" in commands["worker-gpu"]
    assert "infra.bootstrap" in commands["bootstrap"] and "deploy --all" in commands["bootstrap"]
    assert "deployments.webhook" in commands["webhook"]
    server_env = compose["services"]["prefect-server"]["environment"]
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")


def _referenced_files(document: dict) -> list[Path]:
    files = []
    for service in document["services"].values():
        build = service.get("build")
        if build:
            context = (INFRA / build["context"]).resolve()
            files += [context, context / build.get("dockerfile", "Dockerfile")]
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                files.append((INFRA / source).resolve())
        env_file = service.get("env_file")
        files += [(INFRA / f).resolve() for f in ([env_file] if isinstance(env_file, str) else env_file or [])]
    return files


@pytest.mark.parametrize("path", [COMPOSE, GPU], ids=["compose", "gpu-override"])
def test_referenced_files_exist(path):
    document = yaml.safe_load(path.read_text())
    files = _referenced_files(document)
    assert files, "expected build contexts or mounts"
    for file in files:
        assert file.exists(), f"{path.name} references {file}, which does not exist"


def test_dependencies_name_services(compose):
    names = set(compose["services"])
    for name, service in compose["services"].items():
        assert set(service.get("depends_on", {})) <= names, name
    assert set(yaml.safe_load(GPU.read_text())["services"]) <= names


def test_secrets_come_from_interpolation_only(compose):
    text = COMPOSE.read_text()
    required = {m.group(1) for m in INTERPOLATION.finditer(text)}
    example = dict(
        line.split("=", 1)
        for line in (INFRA / "compose.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), f"not in compose.env.example: {required - set(example)}"
    assert (INFRA / ".gitignore").read_text().splitlines()[-1] == ".env"
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")) and value:
                assert str(value).startswith("${"), (name, key)


def test_docker_pool_templates_match_the_compose_names(compose):
    assert compose["networks"]["default"]["name"] == "lightbox"
    named = {v["name"] for v in compose["volumes"].values() if v and "name" in v}
    for role in ("cpu", "gpu"):
        props = template_for("docker", role)["variables"]["properties"]
        assert props["networks"]["default"] == ["lightbox"]
        assert {v.split(":")[0] for v in props["volumes"]["default"]} <= named


def test_gpu_override_reserves_a_gpu():
    override = yaml.safe_load(GPU.read_text())["services"]
    (device,) = override["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert override["bootstrap"]["environment"]["LIGHTBOX_GPU_DEVICE"] == "cuda"


RECEIVER_NEEDS = {
    "PREFECT_API_URL",
    "LIGHTBOX_DATABASE_URL",
    "PGPASSWORD",
    "LIGHTBOX_SHOPIFY_SHOP",
    "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET",
}
RECEIVER_MUST_NOT_SEE = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD", "LIGHTBOX_SHOPIFY_ACCESS_TOKEN")


def _assert_receiver_env(env: dict) -> None:
    assert set(env) <= RECEIVER_NEEDS, f"the receiver does not need {set(env) - RECEIVER_NEEDS}"
    for key, value in env.items():
        for secret in RECEIVER_MUST_NOT_SEE:
            assert secret not in str(value), (key, secret)
    user = env["LIGHTBOX_DATABASE_URL"].split("://", 1)[1].split("@", 1)[0]
    assert user == "lightbox_receiver" and ":" not in user  # its own role, no password in the URL
    assert env["PGPASSWORD"] == "${LIGHTBOX_RECEIVER_DB_PASSWORD:?set LIGHTBOX_RECEIVER_DB_PASSWORD in infra/.env}"


def test_the_receiver_env_anchor_holds_only_what_the_receiver_needs(compose):
    _assert_receiver_env(compose["x-receiver-env"])
    superuser = compose["services"]["postgres"]["environment"]["POSTGRES_USER"]
    assert superuser != "lightbox_receiver"


def test_the_internet_facing_receiver_gets_only_its_env(compose):
    """The receiver had the whole worker environment: the MinIO root keys, the Shopify
    Admin token and the database superuser's password."""
    service = compose["services"]["webhook"]
    assert "env_file" not in service
    _assert_receiver_env(service["environment"])


@pytest.mark.postgres
def test_receiver_role_reads_and_writes_rows_but_cannot_change_the_schema(pg_server_url):
    """infra/postgres-receiver.sh run by psql against the real server, as the postgres
    image runs it; then the owner creates a table (as bootstrap's migrations do)."""
    import shutil
    import subprocess
    import uuid

    import psycopg

    if shutil.which("psql") is None:
        pytest.fail("psql is needed to run infra/postgres-receiver.sh (apt-get install postgresql-client)")
    tag = uuid.uuid4().hex[:8]
    owner, receiver, database = f"lb_owner_{tag}", f"lb_receiver_{tag}", f"lb_catalog_{tag}"
    admin_dsn = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{owner}" LOGIN')
        admin.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
    try:
        env = {
            "PATH": os.environ["PATH"],
            "PGHOST": "127.0.0.1",
            "POSTGRES_USER": "postgres",
            "LIGHTBOX_RECEIVER_DB_PASSWORD": "receiver-pw",
            "LIGHTBOX_RECEIVER_ROLE": receiver,
            "LIGHTBOX_CATALOG_OWNER": owner,
            "LIGHTBOX_CATALOG_DB": database,
        }
        for _ in range(2):  # idempotent: a second run (by hand, on an older volume) succeeds
            done = subprocess.run(["sh", str(INFRA / "postgres-receiver.sh")], env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        with psycopg.connect(f"postgresql://{owner}@127.0.0.1:5432/{database}", autocommit=True) as conn:
            conn.execute("CREATE TABLE deliveries (id serial PRIMARY KEY, body text)")
        with psycopg.connect(f"postgresql://{receiver}@127.0.0.1:5432/{database}", autocommit=True) as conn:
            conn.execute("INSERT INTO deliveries (body) VALUES ('x')")
            conn.execute("UPDATE deliveries SET body = 'y'")
            assert conn.execute("SELECT body FROM deliveries").fetchall() == [("y",)]
            for statement in ("CREATE TABLE evil (id int)", "DROP TABLE deliveries", "DELETE FROM deliveries"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            for role in (receiver, owner):
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')
