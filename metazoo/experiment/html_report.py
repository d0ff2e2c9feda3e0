"""`report.html`: the run's Markdown report as one self-contained HTML page.

The page has the same content as `report.md`: headings, paragraphs, tables and plots. It
needs nothing beside it: the CSS is inline and every plot is inlined as a base64 PNG
(`data:image/png;base64,...`), so the file can be mailed or archived alone.

Only the Markdown that `metazoo.experiment.report` writes is understood: `#` headings,
paragraphs with `` `code` ``, pipe tables and image lines `![title](file.png)`.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
_HEADING = re.compile(r"^(?P<level>#{1,6}) (?P<text>.+)$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[*+]*$")  # marks: 1.72*+

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1.5em; color: #1b1f24; line-height: 1.45; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.6em; }
code { background: #f3f4f6; padding: .1em .3em; border-radius: 3px; font-size: 90%; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; white-space: nowrap; }
th { background: #eef1f4; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #f8f9fa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
figcaption { font-size: 13px; color: #57606a; }
"""


def _inline(text: str) -> str:
    """Escape `text` for HTML and turn `` `code` `` spans into `<code>`."""
    parts = text.split("`")
    return "".join(
        f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts)
    )


def _cells(line: str) -> list:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(lines: list) -> str:
    """A pipe table (header, separator, rows) as an HTML table; numbers right-aligned."""
    header, rows = _cells(lines[0]), [_cells(line) for line in lines[2:]]
    out = ['<div class="table-wrap"><table>', "<thead><tr>"]
    out += [f"<th>{_inline(cell)}</th>" for cell in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = [
            f'<td class="num">{html.escape(c)}</td>'
            if _NUMBER.match(c)
            else f"<td>{_inline(c)}</td>"
            for c in row
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def png_data_uri(path) -> str:
    """`data:image/png;base64,...` of the PNG file at `path`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`path` expected an existing PNG file. Received: path={str(path)!r}")
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"`path` expected a PNG file. Received: path={str(path)!r}")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(alt: str, src: str, base_dir: Path) -> str:
    uri = png_data_uri(base_dir / src)
    alt = html.escape(alt)
    return (
        f'<figure><img src="{uri}" alt="{alt}">'
        f"<figcaption>{alt} ({html.escape(src)})</figcaption></figure>"
    )


def markdown_to_html(text: str, base_dir, title: str = "metazoo run") -> str:
    """The HTML page of a report's Markdown `text`, with the images it names inlined.

    Args:
        text: Markdown as `metazoo.experiment.report.markdown` writes it.
        base_dir: the folder that image paths are relative to.
        title: the page's `<title>`.

    Returns:
        A complete HTML document.

    Raises:
        ValueError: if an image is missing or is not a PNG.
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` expected a str. Received: text of type {type(text).__name__}")
    base_dir = Path(base_dir)
    body, paragraph, table = [], [], []

    def flush():
        if paragraph:
            body.append("<p>" + _inline(" ".join(paragraph)) + "</p>")
            paragraph.clear()
        if table:
            body.append(_table(table))
            table.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            if paragraph:
                flush()
            table.append(stripped)
            continue
        if table or not stripped:
            flush()
        if not stripped:
            continue
        if heading := _HEADING.match(stripped):
            flush()
            level = len(heading["level"])
            body.append(f"<h{level}>{_inline(heading['text'])}</h{level}>")
        elif image := _IMAGE.match(stripped):
            flush()
            body.append(_figure(image["alt"], image["src"], base_dir))
        else:
            paragraph.append(stripped)
    flush()
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_html(run_dir) -> Path:
    """Write `report.html` beside `report.md` in `run_dir`; return its path."""
    run_dir = Path(run_dir)
    source = run_dir / "report.md"
    if not source.is_file():
        raise ValueError(
            f"`run_dir` expected a run folder with report.md. Received: run_dir={str(run_dir)!r}"
        )
    page = markdown_to_html(source.read_text(), run_dir, title=f"metazoo run {run_dir.name}")
    path = run_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
