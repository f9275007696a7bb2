"""The production shape on one machine, without containers: ``make up`` / ``make down``.

    python -m infra.stack up | down | status

``up`` starts, in order: a Prefect server on 127.0.0.1 (SQLite under the stack's home, or
PostgreSQL when ``PREFECT_API_DATABASE_CONNECTION_URL`` is set), ``python -m
infra.bootstrap``, ``prefect deploy --all``, a process worker for ``lightbox-cpu`` and one
for ``lightbox-gpu``, and the Shopify webhook receiver. Each is its own process group;
pids go to ``<home>/pids/`` and logs to ``<home>/logs/``. If a step fails, what was
started is stopped again and the log to read is named.

``down`` stops the workers first (a process worker ignores SIGTERM once its server is
gone), then the receiver, then the server: SIGTERM to each process group, SIGKILL after
``STOP_TIMEOUT_S``; the pid files are removed. A worker's flow-run processes (each in a
session of its own) get SIGTERM too, and a worker still alive after ``WORKER_GRACE_S``
a second one (``stop_worker``). A flow run still running is ended with its
worker; Prefect's engine ends it Crashed, or, when it could not (a killed process), its
missing heartbeats do: bootstrap's zombie automation (infra/desired.py) marks a run Crashed
after 300 s without one, and a batch queues a crashed shard again. Running one again
reuses every finished step from the cache.

Settings (environment): ``LIGHTBOX_STACK_HOME`` (default ``.lightbox/stack``),
``LIGHTBOX_PREFECT_PORT`` (4200), ``LIGHTBOX_WEBHOOK_PORT`` (8787), ``LIGHTBOX_MODEL_DIR``
(``.lightbox/models``), ``LIGHTBOX_DATABASE_URL`` (the catalog; default SQLite in the
stack's data folder), ``LIGHTBOX_SHOPIFY_WEBHOOK_SECRET`` (else one is generated into
``<home>/webhook-secret``, mode 0600), ``LIGHTBOX_GPU_SLOTS`` (1), ``LIGHTBOX_CPU_RUNS``
(flow runs at once on the CPU pool and its worker, 6: nightly and backfill one each,
standard the rest but one, which stays free for urgent runs: ``infra.bootstrap.queue_limits``).
Only the standard library is imported here.

Secrets: the home and its folders are mode 0700; the secret file is created 0600 by
``os.open`` (never widened, never through a symlink). The receiver, the one process that
faces the internet, gets the catalog URL in its environment (not on its command line,
which ``ps`` shows) and none of the other secrets (``RECEIVER_WITHHELD``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from infra.processes import STOP_TIMEOUT_S, PortInUse, alive, group_alive, ours, require_free, stop_group
from infra.secret_file import SecretFileError, ensure_secret_file

ROOT = Path(__file__).resolve().parents[1]
STOP_ORDER = ("worker-cpu", "worker-gpu", "webhook", "server")
RECONCILE = "reconcile-shopify/hourly"
# What the receiver must not hold: S3 and MinIO keys, the Shopify Admin token, the Prefect
# server's database URL, PostgreSQL's superuser settings; its webhook secret comes by file.
RECEIVER_WITHHELD = (
    "AWS_",
    "MINIO_",
    "POSTGRES_",
    "LIGHTBOX_S3_",
    "LIGHTBOX_SHOPIFY_ACCESS_TOKEN",
    "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET",
    "PREFECT_API_DATABASE_",
    "PREFECT_SERVER_DATABASE_",
)
START_TIMEOUT_S = 180.0


def _proc_stats() -> Iterator[tuple[Path, list[str]]]:
    """Each live process's /proc entry and the fields of its stat after the command name
    (state, ppid, pgrp, ...); a process gone meanwhile is left out."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(stat) >= 3:
            yield entry, stat


def descendants(pid: int) -> list[int]:
    """The processes whose parent chain leads to ``pid`` (from /proc; none without it)."""
    children: dict[int, list[int]] = {}
    for entry, stat in _proc_stats():
        children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


WORKER_GRACE_S = 5.0  # then a second SIGTERM: Prefect's worker then SIGKILLs itself


def stop_worker(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> str:
    """Stop a Prefect process worker and the flow runs it started, in seconds.

    A process worker answers SIGTERM by no longer taking runs and waiting for the runs it
    started to end, and it starts each run in a session of its own, which a signal to the
    worker's group does not reach: so a run in flight, or one it was just starting, kept it
    (and ``make down``) waiting until SIGKILL. Here every flow-run process of the worker
    gets SIGTERM as well, also one that appears while the worker stops; Prefect's engine
    ends such a run Crashed, and a new run finds its finished steps in the cache. A worker
    that stopped but still waits to flush its events gets a second SIGTERM after
    ``WORKER_GRACE_S`` (Prefect's handler turns it into SIGKILL), as do its runs."""
    os.killpg(pid, signal.SIGTERM)
    started = time.monotonic()
    sessions: set[int] = set()
    again = False
    while time.monotonic() < started + timeout_s:
        for child in descendants(pid):
            try:
                group = os.getpgid(child)
                if group != pid and group not in sessions:
                    os.killpg(group, signal.SIGTERM)
                    sessions.add(group)
            except (ProcessLookupError, PermissionError):
                continue
        left = [g for g in (pid, *sessions) if group_alive(g)]
        if not left:
            runs = f", {len(sessions)} flow run(s) ended" if sessions else ""
            return f"stopped in {time.monotonic() - started:.1f} s{runs}"
        if not again and time.monotonic() > started + WORKER_GRACE_S:
            for group in left:
                _signal_group(group, signal.SIGTERM)
            again = True
        time.sleep(0.1)
    stuck = _members([g for g in (pid, *sessions) if group_alive(g)])  # before the kill: what held it
    for group in (pid, *sessions):
        _signal_group(group, signal.SIGKILL)
    return f"killed after {timeout_s:.0f} s" + (f" ({stuck})" if stuck else "")


def _members(groups: list[int]) -> str:
    """The processes of ``groups`` with their state (R, S, D, Z: a zombie still counts as alive
    to a signal) and command, from /proc: what a stop waited on."""
    found = []
    for entry, stat in _proc_stats():
        if int(stat[2]) not in groups:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        found.append(f"{entry.name} {stat[0]} {command.strip()[:80]}")
    return "; ".join(found)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


class StackError(RuntimeError):
    """A step of ``up`` failed; the message names the log to read."""


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.home = Path(env.get("LIGHTBOX_STACK_HOME") or ROOT / ".lightbox" / "stack").resolve()
        self.port = int(env.get("LIGHTBOX_PREFECT_PORT") or 4200)
        self.webhook_port = int(env.get("LIGHTBOX_WEBHOOK_PORT") or 8787)
        self.model_dir = Path(env.get("LIGHTBOX_MODEL_DIR") or ROOT / ".lightbox" / "models").resolve()
        self.gpu_slots = int(env.get("LIGHTBOX_GPU_SLOTS") or 1)
        self.cpu_runs = int(env.get("LIGHTBOX_CPU_RUNS") or 6)
        self.data = self.home / "data"
        self.database_url = env.get("LIGHTBOX_DATABASE_URL") or f"sqlite:///{self.data / 'catalog.db'}"
        self.logs, self.pids = self.home / "logs", self.home / "pids"
        self.secret_file = self.home / "webhook-secret"
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.base_env = env

    # --- environment and processes -----------------------------------------------------
    def child_env(self) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(
            {
                "PREFECT_HOME": str(self.home / "prefect"),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOCAL_STORAGE_PATH": str(self.data / "results"),
                "LIGHTBOX_ROOT": str(ROOT),
                "LIGHTBOX_DATABASE_URL": self.database_url,
            }
        )
        return env

    def bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def pid_of(self, name: str) -> int | None:
        path = self.pids / f"{name}.pid"
        if not path.is_file():
            return None
        pid = int(path.read_text().strip())
        return pid if alive(pid) else None

    def receiver_env(self) -> dict[str, str]:
        return {k: v for k, v in self.child_env().items() if not k.startswith(RECEIVER_WITHHELD)}

    def receiver_argv(self) -> list[str]:
        """The catalog URL reaches the receiver as LIGHTBOX_DATABASE_URL (receiver_env)."""
        return [
            sys.executable,
            "-m",
            "deployments.webhook",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.webhook_port),
            "--secret-file",
            str(self.secret_file),
            "--migrate",
        ]

    def make_folders(self) -> None:
        """The home and its folders, mode 0700: logs, pids, the catalog and the secret."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in (self.home, self.logs, self.pids, self.data, self.home / "prefect"):
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)  # mkdir leaves an existing folder's mode as it was

    def worker_env(self) -> dict[str, str]:
        """The workers' environment: their flow runs send a heartbeat every 30 s, so one
        whose process or machine died is marked Crashed by bootstrap's zombie automation."""
        return {**self.child_env(), "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it open)
        try:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.child_env() if env is None else env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        (self.pids / f"{name}.pid").write_text(f"{process.pid}\n")
        return process.pid

    def run_step(self, name: str, argv: list[str]) -> str:
        with open(self.logs / f"{name}.log", "wb") as log:
            done = subprocess.run(
                argv,
                cwd=ROOT,
                env=self.child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        if done.returncode != 0:
            raise StackError(
                f"{name} failed (exit {done.returncode}); see {self.logs / name}.log:\n"
                + "\n".join(text.strip().splitlines()[-8:])
            )
        return text

    def wait_http(self, name: str, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.pid_of(name) is None:
                raise StackError(f"{name} exited while starting; see {self.logs / name}.log")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1.0)
        raise StackError(f"{name} did not answer {url} within {START_TIMEOUT_S:.0f} s; see {self.logs / name}.log")

    # --- commands ----------------------------------------------------------------------
    def up(self) -> list[str]:
        running = [n for n in STOP_ORDER if self.pid_of(n) is not None]
        if running:
            if len(running) == len(STOP_ORDER):
                return [f"already up: {', '.join(running)}", *self.addresses()]
            raise StackError(f"partly up ({', '.join(running)} running): run `make down` first")
        try:
            for port in (self.port, self.webhook_port):
                require_free(port)
        except PortInUse as exc:
            raise StackError(str(exc)) from None
        server_db = self.base_env.get("PREFECT_API_DATABASE_CONNECTION_URL", "")
        if server_db.startswith("postgresql") and importlib.util.find_spec("asyncpg") is None:
            raise StackError(
                "PREFECT_API_DATABASE_CONNECTION_URL names PostgreSQL, which the "
                "Prefect server reaches through asyncpg: pip install asyncpg"
            )
        self.make_folders()
        secret_note = self.ensure_secret()
        try:
            self.start(
                "server", [self.bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
            )
            self.wait_http("server", f"{self.api_url}/health")
            summary = self.run_step(
                "bootstrap",
                [
                    sys.executable,
                    "-m",
                    "infra.bootstrap",
                    "--data-dir",
                    str(self.data),
                    "--model-dir",
                    str(self.model_dir),
                    "--gpu-slots",
                    str(self.gpu_slots),
                    "--cpu-runs",
                    str(self.cpu_runs),
                ],
            )
            self.run_step("deploy", [self.bin("prefect"), "--no-prompt", "deploy", "--all"])
            reconcile_note = self.pause_reconcile_without_store()
            self.start(
                "worker-cpu",
                [
                    self.bin("prefect"),
                    "worker",
                    "start",
                    "--pool",
                    "lightbox-cpu",
                    "--name",
                    "lightbox-cpu-1",
                    "--limit",
                    str(self.cpu_runs),
                ],
                self.worker_env(),
            )
            self.start(
                "worker-gpu",
                [
                    self.bin("prefect"),
                    "worker",
                    "start",
                    "--pool",
                    "lightbox-gpu",
                    "--name",
                    "lightbox-gpu-1",
                    "--limit",
                    str(self.gpu_slots),
                ],
                self.worker_env(),
            )
            self.start("webhook", self.receiver_argv(), self.receiver_env())
            self.wait_http("webhook", f"http://127.0.0.1:{self.webhook_port}/healthz")
        except BaseException:
            self.down()
            raise
        return [summary.strip().splitlines()[-1], secret_note, reconcile_note, *self.addresses()]

    def pause_reconcile_without_store(self) -> str:
        """No Shopify store configured: the hourly reconciliation could only fail, so its
        schedule is paused (resume it in the UI once the ``store`` block exists)."""
        if self.base_env.get("LIGHTBOX_SHOPIFY_SHOP"):
            return f"{RECONCILE}: scheduled hourly"
        deployment = _api(f"{self.api_url}/deployments/name/{RECONCILE}")
        for schedule in deployment["schedules"]:
            _api(
                f"{self.api_url}/deployments/{deployment['id']}/schedules/{schedule['id']}",
                method="PATCH",
                body={"active": False},
            )
        return f"{RECONCILE}: schedule paused (no LIGHTBOX_SHOPIFY_SHOP, so no ShopifyStore block to reconcile with)"

    def ensure_secret(self) -> str:
        """The receiver's secret file: from the environment, else generated once
        (``infra.secret_file``: mode 0600 from the start, never through a symlink)."""
        given = self.base_env.get("LIGHTBOX_SHOPIFY_WEBHOOK_SECRET")
        try:
            ensure_secret_file(self.secret_file, given)
        except SecretFileError as exc:
            raise StackError(str(exc)) from None
        source = "from LIGHTBOX_SHOPIFY_WEBHOOK_SECRET" if given else "generated"
        return f"webhook secret: {self.secret_file} ({source}; give Shopify the same value)"

    def down(self) -> list[str]:
        lines = []
        for name in STOP_ORDER:
            pid_file = self.pids / f"{name}.pid"
            pid = self.pid_of(name)
            if pid is not None and ours(pid):
                stop = stop_worker if name.startswith("worker-") else stop_group
                lines.append(f"{name}: {stop(pid)} (pid {pid})")
            elif pid_file.is_file():
                lines.append(f"{name}: was not running")
            pid_file.unlink(missing_ok=True)
        return lines or ["nothing was running"]

    def status(self) -> list[str]:
        lines = [f"{n}: {f'running (pid {p})' if (p := self.pid_of(n)) else 'stopped'}" for n in STOP_ORDER]
        return lines + self.addresses()

    def addresses(self) -> list[str]:
        return [
            f"Prefect UI:       http://127.0.0.1:{self.port}",
            f"webhook receiver: http://127.0.0.1:{self.webhook_port}/webhooks/shopify",
            f"logs:             {self.logs}/",
            f"exports:          {self.data / 'exports'}/",
        ]


API_RETRY_S = 60.0  # how long a call keeps retrying a busy server (below)
RETRIED = (502, 503, 504)


def _api(url: str, method: str = "GET", body: dict | None = None, retry_s: float = API_RETRY_S) -> dict:
    """One call to the stack's own Prefect API. A server that answers 502/503/504 is busy,
    not wrong (Prefect on SQLite answers 503 while ``prefect deploy`` holds the database:
    seen failing ``make up`` under load), so the call is made again, after the
    Retry-After it names or a growing pause, until ``retry_s`` has passed; any other
    error, or a busy server past that, is a StackError naming the call."""
    data = json.dumps(body).encode() if body is not None else None
    deadline = time.monotonic() + retry_s
    pause = 0.5
    while True:
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
            return json.loads(text) if text else {}
        except urllib.error.HTTPError as exc:
            wait = _retry_after(exc.headers.get("Retry-After"), pause)
            if exc.code not in RETRIED or time.monotonic() + wait > deadline:
                raise StackError(f"{method} {url} answered {exc.code}: {exc.read()[:300]!r}") from exc
        time.sleep(wait)
        pause = min(pause * 2, 8.0)


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(max(float(header), 0.0), 30.0) if header else default
    except ValueError:  # an HTTP date: not worth parsing for a loopback server
        return default


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in ("up", "down", "status"):
        sys.stderr.write("usage: python -m infra.stack up|down|status\n")
        return 2
    stack = Stack(dict(os.environ))
    try:
        lines = getattr(stack, argv[0])()
    except StackError as exc:
        sys.stderr.write(f"stack: {exc}\n")
        return 1
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
