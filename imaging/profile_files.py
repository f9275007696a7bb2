"""Export profiles as YAML files teams can add, validated as strictly as templates.

One file per profile, ``<name>.yaml`` (or ``.yml``), holding ``ExportProfile`` fields
(imaging/profiles.py); ``name`` may be omitted and must equal the file name if given.
A new name needs at least ``format``, ``background`` and ``canvas`` or
``longest_side``; a built-in's name changes only the fields given. Example
(``acme-shop.yaml``)::

    format: jpeg
    canvas: [1200, 1200]
    background: white
    fill: 0.8
    min_fill: 0.75
    max_fill: 0.9
    min_side: 800
    max_bytes: 5000000
    frameless: true

``load_profile_files(directory)`` returns ``{name: fields}``, the form
``RunSettings.profiles`` and ``imaging.profiles.load_profiles`` take. A misspelt key,
a bad value or a profile defined twice raises ``ProfileError`` naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from imaging.profiles import load_profiles


class ProfileError(ValueError):
    """A profile file is invalid, or two files define one profile."""


def _describe(exc: ValidationError) -> str:
    """One line (the CLI refuses a run with one line): ``key: message; key: message``."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors())


def load_profile_file(path: Path) -> tuple[str, dict]:
    """Parse and validate one YAML profile: ``(name, fields)``; errors name the file and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile file {path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ProfileError(f"profile file {path}: cannot read it ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"profile file {path}: expected a mapping of keys, got {type(data).__name__}")
    name = data.get("name", path.stem)
    if name != path.stem:
        raise ProfileError(f"profile file {path}: name {name!r} must match the file name {path.stem!r}")
    fields = {k: v for k, v in data.items() if k != "name"}
    try:
        load_profiles({name: fields})
    except ValidationError as exc:
        raise ProfileError(f"profile file {path} is invalid: {_describe(exc)}") from exc
    except ValueError as exc:
        raise ProfileError(f"profile file {path} is invalid: {exc}") from exc
    return name, fields


def load_profile_files(directory: Path) -> dict[str, dict]:
    """Every ``*.yaml``/``*.yml`` profile in ``directory``, ``{name: fields}`` sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ProfileError(f"profile directory {directory} does not exist")
    found: dict[str, tuple[Path, dict]] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        name, fields = load_profile_file(path)
        if name in found:
            raise ProfileError(f"profile {name!r} is defined twice: {found[name][0]} and {path}")
        found[name] = (path, fields)
    return {name: found[name][1] for name in sorted(found)}
