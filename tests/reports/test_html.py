"""Render the HTML report in headless Chromium (phone width) and check what it shows."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from residency.reports.html import render_html
from residency.reports.tia import build_tia

from .support import Run


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_html_is_self_contained(run: Run) -> None:
    html = render_html(run.report, run.parties, build_tia(run.report, run.pack, run.graph))
    assert "<svg" in html and "@media print" in html and "@media (max-width" in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert 'src="http' not in html
    assert html.count('class="tia"') == 10


@pytest.mark.browser
def test_html_in_headless_chromium(run: Run, tmp_path: Path) -> None:
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(render_html(run.report, run.parties,
                                build_tia(run.report, run.pack, run.graph)), encoding="utf-8")
    shot = tmp_path / "shot.png"
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=390,1200"]
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], check=True,
                   capture_output=True, timeout=60)
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert "<svg" in dom and 'class="flow-diagram"' in dom
    assert dom.count("<table") >= 3
    assert "helpdesk-to-l2" in dom and "TO BE COMPLETED BY COUNSEL" in dom
