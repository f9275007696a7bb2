"""Process groups of the one-machine stack (infra/stack.py): alive, ours, stop; free ports.
Only the standard library is imported here."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

STOP_TIMEOUT_S = 30.0


class PortInUse(RuntimeError):
    """Something listens on a port the stack needs; the message says which and what to set."""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return Path(f"/proc/{pid}").exists() and "zombie" not in proc_state(pid)


def proc_state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    return next((line for line in status.splitlines() if line.startswith("State:")), "").lower()


def ours(pid: int) -> bool:
    """The pid still belongs to a process this stack started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc here: trust the pid file
    return any(word in cmdline for word in (b"prefect", b"deployments.webhook"))


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(pid: int) -> str:
    """SIGTERM the process group (the leader's pid is its id), wait, SIGKILL what is left."""
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not group_alive(pid):
            return "stopped"
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return f"killed after {STOP_TIMEOUT_S:.0f} s"


def require_free(port: int) -> None:
    """Nothing listens on the port. SO_REUSEADDR as uvicorn sets it: connections of a stack
    stopped just now (TIME_WAIT) do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on 127.0.0.1 is in use ({exc.strerror}); set "
                "LIGHTBOX_PREFECT_PORT / LIGHTBOX_WEBHOOK_PORT"
            ) from exc
