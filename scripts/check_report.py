"""Render a run's report.html in headless Chromium: screenshot it and check every image loads.

    python scripts/check_report.py RUN_DIR [--screenshot report.png] [--chromium PATH]

Chromium loads a copy of report.html with a short script appended that, once the page has
loaded, writes the `naturalWidth` x `naturalHeight` of every `<img>` into the DOM; the DOM
dumped by `chromium --headless --dump-dom` is read back. A second call takes a full-page
screenshot of report.html itself. Exits 0 when every image decoded with a nonzero size
and every table rendered, 1 otherwise, and prints one line per image.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
<script>
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth,
            height: img.naturalHeight};
  });
  var tables = Array.prototype.map.call(document.querySelectorAll("table"), function (t) {
    return {rows: t.rows.length, width: t.getBoundingClientRect().width};
  });
  var out = document.createElement("pre");
  out.id = "metazoo-probe";
  out.textContent = JSON.stringify({images: images, tables: tables,
                                    height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>
"""
_PROBE_OUT = re.compile(r'<pre id="metazoo-probe">(.*?)</pre>', re.S)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]


def find_chromium(path: str | None = None) -> str | None:
    """The Chromium (or Chrome) executable: `path`, or the first one on PATH."""
    if path:
        return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(chromium: str, args: list, timeout: float = 120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def probe(report: Path, chromium: str) -> dict:
    """Image and table status of `report` as rendered by `chromium`."""
    page = report.read_text(encoding="utf-8")
    if "</body>" not in page:
        raise ValueError(f"`report` expected an HTML page with </body>. Received: {report}")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "probe.html"
        copy.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = _run(chromium, ["--virtual-time-budget=10000", "--dump-dom", copy.as_uri()])
    found = _PROBE_OUT.search(dom)
    if found is None:
        raise RuntimeError("the probe did not run: no status in the dumped DOM")
    return json.loads(html.unescape(found.group(1)))


def screenshot(report: Path, chromium: str, out: Path, width: int = 1400, height: int = 2000):
    """A screenshot of `report` at `width` x `height` pixels, written to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(
        chromium,
        [
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            "--virtual-time-budget=10000",
            report.resolve().as_uri(),
        ],
    )
    if not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot at {out}")
    return out


def check(run_dir, chromium: str | None = None, shot: Path | None = None) -> dict:
    """Probe and screenshot `run_dir/report.html`; return the status with `ok` and `shot`."""
    report = Path(run_dir) / "report.html"
    if not report.is_file():
        raise ValueError(f"`run_dir` expected a folder with report.html. Received: {run_dir}")
    chromium = find_chromium(chromium)
    if chromium is None:
        raise RuntimeError("no chromium found: apt-get install chromium, or pass --chromium")
    status = probe(report, chromium)
    height = min(max(int(status.get("height", 2000)), 800), 16000)
    status["shot"] = str(screenshot(report, chromium, shot or report.with_suffix(".png"),
                                    height=height))  # fmt: skip
    images_ok = all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in status["images"])
    tables_ok = all(t["rows"] > 1 and t["width"] > 0 for t in status["tables"])
    status["ok"] = bool(status["images"]) and images_ok and tables_ok
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--screenshot", type=Path, default=None, help="default: RUN_DIR/report.png")
    parser.add_argument("--chromium", default=None, help="the browser executable")
    args = parser.parse_args(argv)
    status = check(args.run_dir, args.chromium, args.screenshot)
    for image in status["images"]:
        state = "ok" if image["width"] > 0 else "NOT LOADED"
        print(f"{state:10s} {image['width']}x{image['height']}  {image['alt']}")
    print(f"tables: {len(status['tables'])}; page height {status['height']} px")
    print(f"screenshot: {status['shot']}")
    print("report.html renders and every image loads" if status["ok"] else "FAILED")
    return 0 if status["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
