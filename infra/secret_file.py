"""The webhook secret file of the one-machine stack (infra/stack.py).

A new file is made with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, so it is never readable
by others, not even for a moment, and a symlink planted at its name is neither followed
nor written through; a given secret goes to a new file that then replaces the old one
(a rename replaces a link, it does not follow it). Only the standard library is imported.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


class SecretFileError(RuntimeError):
    """The secret's path holds something other than a regular file."""


def ensure_secret_file(path: Path, given: str | None) -> None:
    """Write ``given`` to ``path``; without it keep the file there, or generate one."""
    existing = _regular_file(path)
    if given:
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        staged.unlink(missing_ok=True)
        _write_new_secret(staged, given)
        os.replace(staged, path)
    elif existing:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fchmod(fd, 0o600)  # a file from an older version may be wider
        finally:
            os.close(fd)
    else:
        _write_new_secret(path, secrets.token_urlsafe(32))


def _regular_file(path: Path) -> bool:
    """True for a regular file; False when nothing is there; StackError for anything else
    (a symlink planted at the secret's name is refused, not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise SecretFileError(f"{path} is not a regular file (a symlink?): remove it and run again")
    return True


def _write_new_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
