"""Tables as Markdown (a chapter's own page) or HTML (glued into another page)."""
from __future__ import annotations

from html import escape


def markdown_table(header: list[str], rows: list[list]) -> str:
    """``header`` and ``rows`` as a GitHub-flavoured Markdown table (cells as ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list]) -> str:
    """The same table as HTML, for a table glued into another page (MyST-NB pastes only
    text/plain, HTML and images across documents, not Markdown)."""
    head = "".join(f"<th class=\"head\">{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<table class="table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
