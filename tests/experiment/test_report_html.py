"""report.html: self-contained, the same content as report.md, and it renders in Chromium."""

from __future__ import annotations

import base64
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from metazoo.experiment import report
from metazoo.experiment.html_report import PNG_SIGNATURE, markdown_to_html, write_html
from tests.experiment.test_report_plots import fake_result

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import check_report  # noqa: E402


class Page(HTMLParser):
    """Collects the images, tables (as lists of rows of cell texts) and links of a page."""

    def __init__(self):
        super().__init__()
        self.images, self.tables, self.links, self.text = [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        for name in ("href", "src"):
            if name in attrs and tag != "img":
                self.links.append(attrs[name])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("html_run")
    report.write_run(fake_result(path))
    return path


def parse(path) -> Page:
    page = Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    return page


def test_every_image_is_an_inline_png_of_a_plot_named_in_report_md(run_dir):
    markdown = (run_dir / "report.md").read_text()
    names = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    page = parse(run_dir / "report.html")
    # 4 plots for returns, 2 for each variance target
    assert len(page.images) == len(names) == 8
    for image, name in zip(page.images, names, strict=True):
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix), image["src"][:40]
        data = base64.b64decode(image["src"][len(prefix) :], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        assert data == (run_dir / name).read_bytes()
        assert image["alt"]
    assert page.links == []  # nothing outside the file: no stylesheet, script or link
    assert "<style>" in (run_dir / "report.html").read_text()


def test_every_leaderboard_row_is_a_table_row(run_dir):
    page = parse(run_dir / "report.html")
    markdown = (run_dir / "report.md").read_text()
    md_tables = [block for block in re.split(r"\n\s*\n", markdown) if block.startswith("|")]
    # per target a leaderboard, per fold and per class; the 1-day variance adds risk
    assert len(page.tables) == len(md_tables) == 10
    for table, block in zip(page.tables, md_tables, strict=True):
        lines = block.strip().splitlines()
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
        assert table == [rows[0], *rows[2:]]  # the same cells, header first
    text = " ".join(page.text)
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        assert heading in text
    assert "a percentile bootstrap over the evaluation tasks" in markdown  # how bars are read
    assert "a percentile bootstrap over the evaluation tasks" in text


def test_markdown_to_html_escapes_text_and_refuses_missing_images(tmp_path):
    page = markdown_to_html("# a <b> & `c<d>`\n\ntext <script>\n", tmp_path)
    assert "&lt;b&gt; &amp; <code>c&lt;d&gt;</code>" in page and "<script>" not in page
    with pytest.raises(ValueError, match="`path` expected an existing PNG file"):
        markdown_to_html("![plot](missing.png)\n", tmp_path)
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(ValueError, match="`path` expected a PNG file"):
        markdown_to_html("![plot](fake.png)\n", tmp_path)
    with pytest.raises(ValueError, match="`run_dir` expected a run folder"):
        write_html(tmp_path)


CHROMIUM = check_report.find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium_and_every_image_loads(run_dir, tmp_path, capsys):
    shot = tmp_path / "shot.png"
    code = check_report.main([str(run_dir), "--screenshot", str(shot), "--chromium", CHROMIUM])
    out = capsys.readouterr().out
    assert code == 0, out
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    lines = [line for line in out.splitlines() if line.startswith("ok ")]
    assert len(lines) == len(parse(run_dir / "report.html").images)
    for line in lines:  # every image decoded at its full size, e.g. "ok  1413x634  title"
        width, height = map(int, line.split()[1].split("x"))
        assert width > 100 and height > 100
    assert "tables: 10;" in out and "NOT LOADED" not in out


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_the_browser_check_fails_on_a_broken_image(run_dir, tmp_path):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    start = page.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = page[:start] + "AAAA" + page[start + 400 :]  # a PNG that does not decode
    (tmp_path / "report.html").write_text(broken, encoding="utf-8")
    status = check_report.check(tmp_path, CHROMIUM)
    assert not status["ok"]
    assert [image["width"] for image in status["images"]].count(0) == 1
