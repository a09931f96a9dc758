"""The pieces every page of reprflow is made of: tables (Markdown and HTML) and inline PNG images."""

from __future__ import annotations

import base64
import html


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; a `|` inside a cell is escaped."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(head), "|" + "---|" * len(head), *(line(r) for r in rows)])


def html_table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table, every cell escaped."""
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def img(png: bytes, alt: str) -> str:
    """An inline PNG: the page needs no other file."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
