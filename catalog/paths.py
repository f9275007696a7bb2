"""SKU ids and file names are hostile input: turn them into safe names, never paths."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

MAX_SKU_LENGTH = 200
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_HASHED_TAIL = re.compile(r"-[0-9A-Fa-f]{10}$")  # what sku_dirname appends to a slug
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class UnsafeName(ValueError):
    """A SKU id or file name that cannot be used; the message says why."""


def validate_sku(raw: str) -> str:
    """Return the SKU id stripped of surrounding whitespace, or raise UnsafeName."""
    sku = raw.strip()
    if not sku:
        raise UnsafeName("empty SKU id")
    if len(sku) > MAX_SKU_LENGTH:
        raise UnsafeName(f"SKU id is {len(sku)} characters long (at most {MAX_SKU_LENGTH})")
    if any(unicodedata.category(ch)[0] == "C" for ch in sku):
        raise UnsafeName("SKU id contains control characters")
    return sku


def sku_dirname(sku: str) -> str:
    """A folder / object-key name for a SKU, unique even on case-insensitive stores.

    The id itself when it is plainly safe *and* has no lower-case letters (``MUG-001``,
    ``CUP-ESPRESSO-01``, ``4242``); any other id becomes an ASCII slug plus ``-`` and 10 hex
    digits of the sha256 of the exact id. A kept name never ends like a hashed one
    (``-`` and 10 hex digits, in either case), so no id can take another's name, and
    lower-casing is one-to-one on kept names: ``MUG-1`` stays ``MUG-1`` while ``mug-1``
    and ``x y`` get hashed names that differ from every other id's even ignoring case.
    Names can still meet only if two ids with the same slug share the 40-bit digest
    prefix; ``catalog.manifest`` refuses such a row, naming both ids
    (docs/ARCHITECTURE.md#storage).

    >>> sku_dirname("MUG-001")
    'MUG-001'
    >>> sku_dirname("../../etc/passwd")[:11]
    'etc_passwd-'
    >>> sku_dirname("mug-1") != sku_dirname("MUG-1").lower()
    True
    """
    sku = validate_sku(sku)
    if _kept_as_is(sku):
        return sku
    ascii_form = unicodedata.normalize("NFKD", sku).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_form).strip("._-")[:40] or "sku"
    digest = hashlib.sha256(sku.encode("utf-8")).hexdigest()[:10]
    return f"{slug}-{digest}"


def folder_key(sku: str) -> str:
    """What two SKU folder names are compared on: a case-insensitive store (macOS, Windows,
    some S3-compatible gateways) cannot hold two names that differ only in case."""
    return sku_dirname(sku).casefold()


def _kept_as_is(sku: str) -> bool:
    stem = sku.split(".")[0].lower()
    return (
        _SAFE.fullmatch(sku) is not None
        and not any("a" <= ch <= "z" for ch in sku)
        and not sku.endswith(".")
        and stem not in _WINDOWS_RESERVED
        and _HASHED_TAIL.search(sku) is None
    )


def contained_path(base: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``base``; refuse absolute paths and anything that escapes."""
    if not relative or "\x00" in relative:
        raise UnsafeName("empty image path")
    candidate = Path(relative)
    if candidate.is_absolute() or candidate.drive:
        raise UnsafeName(f"image path {relative!r} is absolute; give it relative to the manifest")
    base_resolved = base.resolve()
    resolved = (base_resolved / candidate).resolve()
    if not resolved.is_relative_to(base_resolved):
        raise UnsafeName(f"image path {relative!r} points outside the catalog folder")
    return resolved
