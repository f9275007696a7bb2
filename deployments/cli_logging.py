"""Where ``lightbox run``'s logs go: Prefect's lines to OUT/lightbox.log, warnings and
errors to stderr (everything with ``--verbose``).

Prefect configures logging when it is first imported, from the file named by
``PREFECT_LOGGING_SETTINGS_PATH``; the temporary API server is a child process with the
same environment. So ``configure`` only sets environment variables, before anything
imports Prefect, and ``cli_logging.yml`` names the two handler factories below.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

SETTINGS = Path(__file__).with_name("cli_logging.yml")
LOG_FILE_ENV = "LIGHTBOX_LOG_FILE"
VERBOSE_ENV = "LIGHTBOX_LOG_VERBOSE"
LOG_NAME = "lightbox.log"

# The progress bar's "clear my line" (deployments/progress.py), so a warning printed on
# the terminal does not land in the middle of the bar. Set only while a bar is shown.
_live_line: Callable[[], None] | None = None
TERMINAL_LOCK = threading.Lock()


def configure(out_dir: Path, *, verbose: bool) -> Path:
    """Point Prefect's logging (this process and the temporary server) at our config.
    Call before Prefect is imported. Returns the log file's path."""
    log_file = Path(out_dir).resolve() / LOG_NAME
    os.environ[LOG_FILE_ENV] = str(log_file)
    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(SETTINGS))
    if verbose:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "NOTSET"
        os.environ[VERBOSE_ENV] = "1"
    # Prefect's usage telemetry, unless the user set these: the temporary server's heartbeat
    # races the server's own SQLite on start-up (a 100-line "database is locked" traceback),
    # and the client prints a notice on a terminal's first run.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    return log_file


def set_live_line(clear: Callable[[], None] | None) -> None:
    global _live_line
    _live_line = clear


class RunLogFile(logging.FileHandler):
    """OUT/lightbox.log, appended to. Records before the folder exists (the checks before
    a run, which must not create it) are dropped rather than failing."""

    def __init__(self, filename: str):
        super().__init__(filename, mode="a", encoding="utf-8", delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None and not os.path.isdir(os.path.dirname(self.baseFilename)):
            return
        super().emit(record)


def run_file_handler() -> logging.Handler:
    """The ``run_file`` handler: the file named by LIGHTBOX_LOG_FILE, else nothing."""
    path = os.environ.get(LOG_FILE_ENV)
    return RunLogFile(path) if path else logging.NullHandler()


class RunStateLines(logging.Filter):
    """Drops Prefect's "Finished in state ..." lines of flow and task runs: a SKU that failed
    is an ERROR to Prefect but a progress line here, and the CLI says how the batch ended."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("prefect.flow_runs", "prefect.task_runs")):
            return True
        return not str(record.msg).startswith("Finished in state")


def console_handler(**kwargs) -> logging.Handler:
    """The ``console`` handler: Prefect's, on stderr, without run-state lines unless
    verbose; nothing in the temporary server's process (its lines go to the log file)."""
    if os.environ.get("PREFECT__SERVER_EPHEMERAL"):
        return logging.NullHandler()
    from prefect.logging.handlers import PrefectConsoleHandler

    class ConsoleBesideProgress(PrefectConsoleHandler):
        def emit(self, record: logging.LogRecord) -> None:
            with TERMINAL_LOCK:
                if _live_line is not None:
                    _live_line()
                super().emit(record)

    handler = ConsoleBesideProgress(**kwargs)
    if not os.environ.get(VERBOSE_ENV):
        handler.addFilter(RunStateLines())
    return handler
