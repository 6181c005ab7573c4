"""A tiny builder for self-contained HTML pages: escaped text, numeric tables, inlined PNGs.

Every piece of text goes through :func:`html.escape`. Numbers are shown with a fixed number
of decimals and carry their exact value in a ``data-value`` attribute, so a test (or a
reader's script) can compare a table cell with the CSV or JSON it came from.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

from ssl_domains.layout.numbers import DECIMALS, fmt, is_number

__all__ = ["DECIMALS", "esc", "fmt", "is_number", "cell", "table", "data_uri", "figure", "note",
           "para", "page"]

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;
 color:#1d2330;background:#f5f6f8;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:18px 28px 60px;background:#fff;min-height:100vh}
h1{font-size:1.6em;margin:.3em 0 .1em}h2{font-size:1.25em;margin-top:1.8em;
 border-bottom:2px solid #e1e4ea;padding-bottom:.2em}h3{font-size:1.05em;margin:1.2em 0 .4em}
.sub{color:#5b6475;margin:0 0 1em}
nav{font-size:.9em;margin:.6em 0 1em}nav a{margin-right:.9em;color:#2456a4;text-decoration:none}
.answer{background:#eef4ff;border-left:5px solid #2456a4;padding:.6em 1em;margin:.8em 0}
.answer p{margin:.3em 0}.answer .big{font-size:1.15em;font-weight:600}
.note{color:#7a5a00;background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;
 margin:.5em 0;font-size:.92em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em}
th,td{border:1px solid #dde1e8;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f6}td.num{text-align:right;font-variant-numeric:tabular-nums;
 white-space:nowrap}tr:nth-child(even) td{background:#fafbfc}
table.kv td.num{text-align:left}table.kv td{max-width:720px;overflow-wrap:anywhere}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;max-width:100%}figure img{max-width:100%;height:auto;border:1px solid #e6e8ec}
figcaption{font-size:.85em;color:#5b6475;max-width:560px}
pre{background:#f6f8fa;border:1px solid #e1e4ea;padding:.7em;overflow-x:auto;font-size:.82em;
 white-space:pre-wrap;word-break:break-word}
details summary{cursor:pointer;color:#2456a4;margin:.4em 0}
.pos{color:#0a7a32;font-weight:600}.neg{color:#b3261e;font-weight:600}
"""


def esc(text: Any) -> str:
    """HTML-escaped ``str(text)``."""
    return html.escape(str(text), quote=True)


def cell(value: Any, decimals: int = DECIMALS, signed: bool = False) -> str:
    """A ``<td>``: numbers right-aligned with their exact value in ``data-value``."""
    if is_number(value):
        exact = repr(int(value)) if isinstance(value, Integral) else repr(float(value))
        return (f'<td class="num" data-value="{esc(exact)}">'
                f"{esc(fmt(value, decimals, signed))}</td>")
    if value is None:
        return "<td></td>"
    return f"<td>{esc(value)}</td>"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str = "",
          decimals: int = DECIMALS, cls: str = "") -> str:
    """An HTML table of escaped header and cells (see :func:`cell`); ``cls="kv"`` for
    item/value lists (values left-aligned, long text wrapped)."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    ident += f' class="{esc(cls)}"' if cls else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v, decimals) for v in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(png: Path) -> str:
    """``data:image/png;base64,...`` of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def figure(png: Path, caption: str, width: int | None = None) -> str:
    """A ``<figure>`` with the PNG inlined and an escaped caption."""
    style = f' style="width:{int(width)}px"' if width else ""
    return (f'<figure{style}><img src="{data_uri(png)}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)} <code>{esc(png.name)}</code></figcaption></figure>")


def note(text: str) -> str:
    """A highlighted note (used where a section is skipped)."""
    return f'<p class="note">{esc(text)}</p>'


def para(text: str, cls: str = "") -> str:
    """An escaped paragraph."""
    return f'<p class="{esc(cls)}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: ``sections`` are ``(anchor, heading, inner_html)``."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{inner}</section>'
                   for a, h, inner in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p><nav>{nav}</nav>"
            f"{body}</main></body></html>\n")
