"""What ops see in report.html: the sample report (tests/catalog/test_report_html.py: SKUs in
each state, a hostile SKU id, thumbnails from the sample photos) opened in a real headless
Chromium, its script run, filters clicked. Screenshots are kept in the test's tmp folder
(``report.png``, ``report-failed.png``) and the first is copied to /tmp/report-shot.png."""

from __future__ import annotations

import shutil

from tests.catalog.test_report_html import sample_page
from tests.ui.chromium import browser_page

VISIBLE = "[...document.querySelectorAll('article')].filter(a => !a.hidden)"
READY = "document.querySelector('nav button[aria-pressed=true]') !== null"


def _shoot(page, path):
    """``page.screenshot``, after the page has laid out at the screenshot's full height:
    cards off screen are skipped (``content-visibility: auto``) until a frame sees them."""
    height = page.evaluate("Math.max(document.body.scrollHeight, window.innerHeight)")
    page.send(
        "Emulation.setDeviceMetricsOverride",
        width=1400,
        height=min(int(height), 4000),
        deviceScaleFactor=1,
        mobile=False,
    )
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page.screenshot(path)


def _click(page, label: str) -> None:
    page.evaluate(f"[...document.querySelectorAll('nav button')].find(b => b.innerText.startsWith('{label}')).click()")


def test_report_page_shows_failures_first_with_plain_chips_and_filters(chromium, tmp_path):
    html, report, thumbs = sample_page()
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    with browser_page(chromium, tmp_path / "chromium") as page:
        page.goto(path.as_uri())
        page.wait_for(READY, 30, "the report's script")
        page.wait_for("[...document.images].slice(0, 8).every(i => i.complete && i.naturalWidth > 0)", 30, "thumbnails")
        assert page.evaluate("document.title") == "QC report · nightly-2026-12-02"  # the hostile SKU ran nothing
        assert page.evaluate("document.querySelectorAll('script').length") == 1
        shot = _shoot(page, tmp_path / "report.png")
        shutil.copyfile(shot, "/tmp/report-shot.png")

        first = page.evaluate(f"{VISIBLE}.map(a => a.querySelector('h2').innerText)")
        assert first[:2] == ["BROKEN-TRUNCATED", '<script>document.title="pwned"</script>']  # shown as text
        assert first[2:4] == ["ROCKET-MODEL-9", "STICKER-LOGO"] and first[-1] == "CUP-ESPRESSO-02"
        states = page.evaluate(f"{VISIBLE}.map(a => a.querySelector('.chip.state').innerText)")
        assert states[:4] == ["FAILED", "FAILED", "REJECTED", "HELD"]  # uppercase by the stylesheet
        rocket = page.evaluate(f"{VISIBLE}[2].innerText")
        assert "Background stuck to the edge — 2.3 % of the product, limit 0.5 %" in rocket
        assert "Background not pure white — 43 % off-white pixels, limit 40 %" in rocket
        chip = page.evaluate(f"getComputedStyle({VISIBLE}[2].querySelector('.chip.fail')).backgroundColor")
        assert chip == "rgb(253, 236, 234)"  # the red chip
        outline = page.evaluate(f"{VISIBLE}[2].querySelector('.src svg path').getAttribute('d').length")
        assert outline > 20
        assert "0.0234" not in page.text() and "cut.background_attached" not in page.text()

        _click(page, "Failed")
        shown = page.evaluate(f"{VISIBLE}.map(a => a.dataset.tags)")
        assert shown == ["failed", "failed"]
        _shoot(page, tmp_path / "report-failed.png")
        assert page.evaluate("location.hash") == "#failed"

        _click(page, "Exported")
        assert page.evaluate(f"{VISIBLE}.map(a => a.querySelector('h2').innerText)") == [
            "MOTO-RED-750",
            "CUP-ESPRESSO-01",
            "CUP-ESPRESSO-02",
        ]
        _click(page, "Warnings")
        moto = page.evaluate(f"{VISIBLE}.map(a => a.innerText)")
        assert len(moto) == 1 and "Halo around the product — 4.1 % of the outline, warns above 3 %" in moto[0]
        assert "Brighter or darker than the batch" in moto[0]

        _click(page, "All")
        page.evaluate(
            "const q = document.getElementById('q'); q.value = 'espresso'; q.dispatchEvent(new Event('input'))"
        )
        assert page.evaluate(f"{VISIBLE}.length") == 2
        page.evaluate(
            "const r = document.getElementById('q'); r.value = 'no such sku'; r.dispatchEvent(new Event('input'))"
        )
        assert page.evaluate("document.getElementById('empty').hidden") is False

        page.evaluate("const s = document.getElementById('q'); s.value = ''; s.dispatchEvent(new Event('input'))")
        page.goto(path.as_uri() + "#rejected")  # a link opens a filter (here only the hash changes)
        page.wait_for(f"{VISIBLE}.map(a => a.dataset.tags).join() === 'rejected'", 10, "the rejected filter")
