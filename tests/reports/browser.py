"""Headless Chromium as a DPO's browser: screenshots, and measurements taken in the page.

A small script is appended to a copy of the page (the report itself never carries one). It
reads the laid-out DOM at the given window width and writes its figures into a `<pre>` that
`--dump-dom` returns: the rendered size of every SVG text (font size × the SVG's scale on
screen), every pair of SVG text boxes that intersect, and every table header's width
against its longest word.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MEASURE_JS = r"""
(function () {
  const out = {texts: 0, min_px: 1e9, min_text: "", overlaps: [], columns: [], cells: [],
               overflow: [], svgs: []};
  document.querySelectorAll("svg").forEach(s => {
    const r = s.getBoundingClientRect();
    out.svgs.push([s.getAttribute("class"), r.width, s.viewBox.baseVal.width]);
  });
  const boxes = [];
  document.querySelectorAll("svg text").forEach(t => {
    const r = t.getBoundingClientRect();
    if (!t.textContent.trim() || (r.width === 0 && r.height === 0)) return;
    const m = t.getScreenCTM();
    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    out.texts++;
    if (px < out.min_px) { out.min_px = px; out.min_text = t.textContent; }
    boxes.push([r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY,
                t.textContent]);
  });
  boxes.sort((a, b) => a[0] - b[0]);
  const TOL = 0.5;
  for (let i = 0; i < boxes.length; i++) {
    const a = boxes[i];
    for (let j = i + 1; j < boxes.length && boxes[j][0] < a[2] - TOL; j++) {
      const b = boxes[j];
      const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
      const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
      if (w > TOL && h > TOL) out.overlaps.push([a[4], b[4], w, h]);
    }
  }
  // every word of every measured cell laid out at once in the cell's own font, unbreakable
  // (one layout for all probes: a probe per reflow takes minutes on a long page)
  const probes = [];
  const probe = (el, text) => {
    const spans = text.split(/\s+/).filter(Boolean).map(word => {
      const p = document.createElement("span");
      p.style.cssText = "position:absolute;visibility:hidden;white-space:nowrap";
      p.textContent = word;
      el.appendChild(p);
      return p;
    });
    probes.push(spans);
    return probes.length - 1;
  };
  const widest = k => Math.max(0, ...probes[k].map(p => p.getBoundingClientRect().width));
  const inner = el => {
    const cs = getComputedStyle(el);
    // collapsed borders are shared: a cell's box holds half of each
    const half = getComputedStyle(el.closest("table")).borderCollapse === "collapse" ? 0.5 : 1;
    return el.getBoundingClientRect().width - parseFloat(cs.paddingLeft)
      - parseFloat(cs.paddingRight)
      - half * (parseFloat(cs.borderLeftWidth) + parseFloat(cs.borderRightWidth));
  };
  const heads = [...document.querySelectorAll("table thead th")];
  const cells = [...document.querySelectorAll("table td.nowrap")];
  const widths = [...heads, ...cells].map(el => [el, el.textContent.trim(), inner(el)]);
  const ks = widths.map(([el, text]) => probe(el, text));
  widths.forEach(([el, text, w], i) => {
    (i < heads.length ? out.columns : out.cells).push([text, w, widest(ks[i])]);
  });
  probes.flat().forEach(p => p.remove());
  document.querySelectorAll(".table-wrap").forEach(w => {
    if (w.scrollWidth > w.clientWidth + 1) {
      const t = w.querySelector("table"), th = t && t.querySelector("thead th");
      out.overflow.push([(t && t.className) + " / " + (th ? th.parentNode.textContent : ""),
                         w.scrollWidth - w.clientWidth]);
    }
  });
  const pre = document.createElement("pre");
  pre.id = "residency-measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
"""


def chromium() -> str:
    """The browser, or a skip outside CI (in CI a missing browser is a failure)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("CI is set but chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium not installed (apt-get install chromium)")


def require_dot() -> None:
    if shutil.which("dot"):
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but Graphviz is not installed (apt-get install graphviz)")
    pytest.skip("Graphviz `dot` not installed (apt-get install graphviz)")


@dataclass(frozen=True)
class Measured:
    texts: int
    min_px: float
    min_text: str
    overlaps: list[list[Any]]
    columns: list[list[Any]]  # header, inner width, widest word
    cells: list[list[Any]]
    overflow: list[list[Any]]
    svgs: list[list[Any]]

    def narrow_columns(self) -> list[list[Any]]:
        return [c for c in self.columns if c[1] + 0.5 < c[2]]

    def narrow_cells(self) -> list[list[Any]]:
        return [c for c in self.cells if c[1] + 0.5 < c[2]]

    def narrowest(self) -> tuple[float, str]:
        """The least room any header has beyond its longest word (px), and which."""
        gap, name = min(((c[1] - c[2], c[0]) for c in self.columns), default=(0.0, ""))
        return gap, name


def _flags(exe: str, profile: Path, width: int, height: int) -> list[str]:
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={width},{height}"]


def measure(page: Path, width: int = 1400, shot_height: int = 3000) -> Measured:
    """Screenshot `page` (beside it, `.png`) and measure it at `width` px."""
    exe = chromium()
    work = page.parent
    probe = work / f"{page.stem}.measure.html"
    html = page.read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", f"<script>{MEASURE_JS}</script></body>"),
                     encoding="utf-8")
    shot = work / f"{page.stem}.png"
    subprocess.run([*_flags(exe, work / "profile", width, shot_height), f"--screenshot={shot}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([*_flags(exe, work / "profile", width, 1000),
                          "--virtual-time-budget=5000", "--run-all-compositor-stages-before-draw",
                          "--dump-dom", probe.as_uri()],
                         check=True, capture_output=True, text=True, timeout=180).stdout
    start = dom.index('<pre id="residency-measured">') + len('<pre id="residency-measured">')
    raw = dom[start:dom.index("</pre>", start)]
    import html as htmllib

    return Measured(**json.loads(htmllib.unescape(raw)))
