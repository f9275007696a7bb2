"""report.html: the batch report people read (pure: the report dict and thumbnails in, one
self-contained HTML string out; no Prefect, no I/O).

Per SKU: its state as a coloured chip, the source photo with the mask's outline drawn over
it and each profile's export side by side, the failing and warning checks as chips in
plain words with their limits (quality/labels.py), and every figure, rounded, behind
"All figures". SKUs needing attention come first (failed, rejected, held, other states,
exported with warnings, exported); buttons filter by group, a box by SKU or title.

Fast with 1000 SKUs: thumbnails are small JPEG data URIs (catalog/report_images.py, 160
px), so the one file works wherever it is opened or uploaded; ``content-visibility``
keeps the browser from laying out and decoding cards off screen. Everything from input
(SKU ids, titles, reasons, profile names) is HTML-escaped; the script reads only the
page's own attributes. docs/ARCHITECTURE.md, "Report".
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape

from catalog.report_images import SkuThumbs
from catalog.report_style import CSS, JS
from quality.labels import DIMENSION_LABELS, describe_check, label_of

# Display groups, in the order the page lists them; each SKU is in exactly one.
GROUPS = ("failed", "rejected", "held", "other", "warnings", "exported")
FILTERS = (("failed", "Failed"), ("rejected", "Rejected"), ("held", "Held"))
FILTERS += (("warnings", "Warnings"), ("exported", "Exported"), ("all", "All"))
STATE_WORDS = {"warnings": "exported · warnings"}
BAR_COLOURS = {"failed": "#c9302c", "rejected": "#7d1d3f", "held": "#5c6bc0", "other": "#9fa8da"}
BAR_COLOURS |= {"warnings": "#e0a100", "exported": "#23854a"}


def group_of(entry: Mapping) -> str:
    """Which list a SKU belongs to: its terminal state, or warnings for an exported SKU
    with warnings (amber), or other (a batch that stopped before its end)."""
    state = entry["state"]
    if state == "exported":
        return "warnings" if entry.get("status") == "amber" else "exported"
    return state if state in ("failed", "rejected", "held") else "other"


def render_report(report: Mapping, thumbnails: Mapping[str, SkuThumbs]) -> str:
    """The whole page; ``thumbnails`` by the SKU's ``dir`` (missing: no pictures)."""
    entries = sorted(report["skus"], key=lambda e: GROUPS.index(group_of(e)))  # stable: manifest order within
    groups = Counter(group_of(e) for e in entries)
    cards = "".join(_card(e, thumbnails.get(e["dir"]), report.get("profiles") or []) for e in entries)
    title = f"QC report · {report['name']}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"{_header(report, groups, len(entries))}{_filters(groups, len(entries))}"
        f'<main>{cards}<p class="empty" id="empty" hidden>No SKU matches.</p></main>'
        f"<script>{JS}</script></body></html>"
    )


def _header(report: Mapping, groups: Counter, total: int) -> str:
    meta = [_when(report.get("created_at")), _duration(report.get("wall_seconds"))]
    meta += [f"batch {report['batch_id']}", f"state {report.get('state', '?')}"]
    if report.get("template"):
        meta.append(f"template {report['template']}")
    if report.get("profiles"):
        meta.append("profiles " + ", ".join(report["profiles"]))
    words = []
    for state, n in (report.get("counts") or {}).items():
        extra = f" ({groups['warnings']} with warnings)" if state == "exported" and groups["warnings"] else ""
        words.append(f"<b>{n}</b> {escape(str(state))}{extra}")
    bar = "".join(
        f'<span style="width:{100 * groups[g] / total:.2f}%;background:{BAR_COLOURS[g]}" title="{groups[g]} {g}">'
        "</span>"
        for g in GROUPS
        if groups[g]
    )
    return (
        f"<header><h1>QC report · {escape(str(report['name']))}</h1>"
        f'<div class="meta">{escape(" · ".join(m for m in meta if m))}</div>'
        f'<div class="summary"><b>{total}</b> SKUs: {", ".join(words)}</div>'
        f'<div class="bar">{bar}</div></header>'
    )


def _filters(groups: Counter, total: int) -> str:
    count = {"all": total, "exported": groups["exported"] + groups["warnings"]}
    buttons = []
    for key, word in FILTERS:
        n = count.get(key, groups[key])
        if key == "held" and not n:
            continue
        off = " disabled" if not n else ""
        buttons.append(f'<button type="button" data-filter="{key}" aria-pressed="false"{off}>{word}<b>{n}</b></button>')
    search = '<input id="q" type="search" placeholder="Find a SKU or title" aria-label="Find a SKU or title">'
    return f"<nav>{''.join(buttons)}{search}</nav>"


def _card(entry: Mapping, thumbs: SkuThumbs | None, profiles: list[str]) -> str:
    group = group_of(entry)
    tags = f"{group} exported" if group == "warnings" else group
    colour = {"failed": "red", "rejected": "red", "warnings": "amber", "exported": "green"}.get(group, "amber")
    text = f"{entry['sku']} {entry.get('title') or ''}".lower()
    facts = []
    if entry.get("attempts"):
        facts.append(f"{entry['attempts']} attempt{'s' if entry['attempts'] != 1 else ''}")
    if entry.get("segment_confidence") is not None:
        facts.append(f"cut confidence {label_of('segment.confidence').value(entry['segment_confidence'])}")
    head = (
        f'<div class="head"><span class="chip state {group}">{escape(STATE_WORDS.get(group, entry["state"]))}</span>'
        f"<h2>{escape(str(entry['sku']))}</h2>"
        + (f'<span class="name">{escape(str(entry["title"]))}</span>' if entry.get("title") else "")
        + (f'<span class="facts">{escape(" · ".join(facts))}</span>' if facts else "")
        + "</div>"
    )
    reason = f'<p class="reason">{escape(str(entry["reason"]))}</p>' if entry.get("reason") else ""
    return (
        f'<article class="{colour}" data-tags="{tags}" data-text="{escape(text)}">'
        f'{_pictures(entry, thumbs, profiles)}<div class="info">{head}{reason}{_chips(entry)}{_figures(entry)}</div>'
        "</article>"
    )


def _pictures(entry: Mapping, thumbs: SkuThumbs | None, profiles: list[str]) -> str:
    thumbs = thumbs or SkuThumbs()
    outline = ""
    if thumbs.outline and thumbs.size:
        w, h = thumbs.size
        outline = (
            f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" aria-hidden="true">'
            f'<path d="{escape(thumbs.outline)}"/></svg>'
        )
    caption = "source · mask outline" if outline else "source"
    figures = [_figure(thumbs.source, f"source photo of {entry['sku']}", escape(caption), outline, "src")]
    qc = entry.get("qc") or {}
    for profile in list(dict.fromkeys([*profiles, *qc, *thumbs.exports])):
        if profile not in qc and profile not in thumbs.exports:
            continue
        status = (qc.get(profile) or {}).get("status", "")
        dot = f'<span class="dot {escape(status)}" title="QC {escape(status)}"></span>' if status else ""
        shipped = ' <span title="delivered">✓</span>' if profile in (entry.get("outputs") or {}) else ""
        figures.append(
            _figure(thumbs.exports.get(profile), f"{profile} render of {entry['sku']}", dot + escape(profile) + shipped)
        )
    blank = "" if thumbs.source or thumbs.exports else " blank"
    return f'<div class="pics{blank}">{"".join(figures)}</div>'


def _figure(jpeg: bytes | None, alt: str, caption: str, overlay: str = "", cls: str = "") -> str:
    if jpeg:
        data = base64.b64encode(jpeg).decode("ascii")
        inner = f'<img src="data:image/jpeg;base64,{data}" alt="{escape(alt)}" loading="lazy" decoding="async">'
    else:
        inner = '<div class="none">no picture</div>'
    return f'<figure class="{cls}"><div class="frame">{inner}{overlay}</div><figcaption>{caption}</figcaption></figure>'


def _chips(entry: Mapping) -> str:
    """Failing then warning checks, each once (a check shared by the profiles is one chip,
    a per-profile one names its profiles), then the batch-consistency flags."""
    found: dict[tuple[str, str], list[str]] = {}
    qc = entry.get("qc") or {}
    for profile, result in qc.items():
        for check in result.get("checks") or []:
            if check.get("status") in ("fail", "warn"):
                found.setdefault((check["status"], describe_check(check), _hint(check)), []).append(profile)
    chips = []
    for (status, text, hint), where in sorted(found.items(), key=lambda kv: kv[0][0] != "fail"):
        place = f'<span class="where">· {escape(", ".join(where))}</span>' if len(where) < len(qc) else ""
        chips.append(f'<span class="chip {status}" title="{escape(hint)}">{escape(text)}{place}</span>')
    for flag in dict.fromkeys(entry.get("consistency_flags") or []):
        profile, _, dimension = str(flag).rpartition(":")
        text = DIMENSION_LABELS.get(dimension, dimension)
        place = f'<span class="where">· {escape(profile)}</span>' if profile else ""
        chips.append(f'<span class="chip warn" title="batch consistency: {escape(flag)}">{escape(text)}{place}</span>')
    return f'<div class="chips">{"".join(chips)}</div>' if chips else ""


def _hint(check: Mapping) -> str:
    """The tooltip: the raw key, for engineers, and the check's own detail."""
    detail = check.get("detail") or ""
    return f"{check['name']}: {detail}" if detail else check["name"]


def _figures(entry: Mapping) -> str:
    """Every graded figure, rounded, by check (rows) and profile (columns); a figure all
    profiles share (the cut, colour, edges: measured once per SKU) spans the columns."""
    qc = entry.get("qc") or {}
    if not qc:
        return ""
    profiles = list(qc)
    cells: dict[str, dict[str, tuple]] = {}
    for profile in profiles:
        for check in qc[profile].get("checks") or []:
            cells.setdefault(check["name"], {})[profile] = (check.get("value"), check.get("status", "pass"))
    rows = []
    for name, by_profile in cells.items():
        label = label_of(name)
        if len(by_profile) == len(profiles) and len(set(by_profile.values())) == 1:
            value, status = next(iter(by_profile.values()))
            tds = _cell(label.value(value), status, f' colspan="{len(profiles)}"' if len(profiles) > 1 else "")
        else:
            tds = "".join(
                _cell(label.value(by_profile[p][0]), by_profile[p][1]) if p in by_profile else "<td></td>"
                for p in profiles
            )
        rows.append(f'<tr><th title="{escape(name)}">{escape(label.name)}</th>{tds}</tr>')
    head = "".join(f"<th>{escape(p)}</th>" for p in profiles)
    return (
        f"<details><summary>All figures</summary><table><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )


def _cell(text: str, status: str, span: str = "") -> str:
    cls = f' class="{escape(status)}"' if status != "pass" else ""
    return f"<td{cls}{span}>{escape(text)}</td>"


def _when(iso: str | None) -> str:
    """ "2 Dec 2026, 01:00 UTC". The catalog stores UTC; SQLite hands it back without a zone."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{moment.day} {moment.strftime('%b %Y, %H:%M')} UTC"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = float(seconds)
    if s < 60:
        return f"took {s:.1f} s" if s < 10 else f"took {s:.0f} s"
    if s < 3600:
        return f"took {int(s // 60)} min {int(s % 60)} s"
    return f"took {int(s // 3600)} h {int(s % 3600 // 60)} min"
