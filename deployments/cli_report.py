"""``lightbox report DIR``: a batch's SKUs as a table, from DIR/report.json.

Columns: SKU, state, renders tried, segmentation confidence, the worst mean colour change
(ΔE) over the profiles, QC per profile (P pass, W warn, F fail, in profile order), the
SKU's seconds, and the reason (or the warnings) as catalog/report.py's ``sku_label`` says.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

QC_LETTER = {"pass": "P", "warn": "W", "fail": "F"}


def load_report(path: Path) -> dict:
    path = path / "report.json" if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no report at {path}: pass the --out folder of a finished `lightbox run`") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path} ({exc.__class__.__name__})") from None


def _figures(entry: dict, profiles: list[str]) -> list[str]:
    qc = entry.get("qc") or {}
    conf = entry.get("segment_confidence")
    delta_e = [q["metrics"].get("colour.delta_e_mean") for q in qc.values() if q.get("metrics")]
    delta_e = [d for d in delta_e if isinstance(d, int | float)]
    letters = "".join(QC_LETTER.get(qc[p]["status"], "?") if p in qc else "-" for p in profiles)
    seconds = sum(v for v in (entry.get("timings") or {}).values() if isinstance(v, int | float))
    return [
        str(entry.get("attempts", 0)),
        f"{conf:.2f}" if isinstance(conf, int | float) else "-",
        f"{max(delta_e):.1f}" if delta_e else "-",
        letters if qc else "-",
        f"{seconds:.1f}" if seconds else "-",
    ]


def _label(label: str, state: str) -> str:
    return "" if label == state else " ".join(label.split())


def table(report: dict, states: list[str] | None = None, width: int = 120) -> list[str]:
    """The table's lines: a header, one line per SKU (``states`` only), then the counts."""
    from catalog.report import sku_label

    profiles = report.get("profiles") or []
    entries = [e for e in report["skus"] if not states or e["state"] in states]
    header = ["SKU", "STATE", "TRIES", "CONF", "ΔE", "QC", "SEC", "REASON"]
    rows = [[e["sku"], e["state"], *_figures(e, profiles), _label(sku_label(e), e["state"])] for e in entries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        text = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        lines.append(text.rstrip() if len(text) <= width else text[: width - 3] + "...")
    counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items())
    shown = f"{len(entries)} of {len(report['skus'])} SKUs shown; " if states else ""
    lines.append(f"batch {report['batch_id']} ({report.get('name', '')}): {shown}{counts}")
    if profiles:
        lines.append(f"QC letters per profile: {', '.join(profiles)} (P pass, W warn, F fail, - none)")
    return lines


def show_report(args) -> int:
    try:
        report = load_report(args.dir)
    except ValueError as exc:
        sys.stderr.write(f"lightbox: {exc}\n")
        return 2
    width = shutil.get_terminal_size((160, 20)).columns if sys.stdout.isatty() else 200
    sys.stdout.write("\n".join(table(report, args.state, width)) + "\n")
    return 0
