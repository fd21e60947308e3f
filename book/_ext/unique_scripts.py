"""Sphinx extension: every ``<script>`` of a page appears once.

Sphinx 7.4's HTML builder adds the scripts that extensions register after ``Builder.init()``
a second time in ``prepare_writing``: an inline script registered with
``app.add_js_file(None, body=...)`` comes back as ``add_js_file('', body=...)``, and the two
differ only in ``None`` against ``''``. sphinx-thebe's ``const THEBE_JS_URL = ...`` thus runs
twice and the browser stops with "Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already
been declared" (sphinx-togglebutton's selector script is repeated the same way).

On ``html-page-context``, after every other handler, this keeps the first of the scripts that
share a source and attributes (an inline script's attributes include its ``body``).
"""
from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def script_key(script: Any) -> tuple:
    """What makes two scripts the same: source (``None`` and ``''`` alike) and attributes."""
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {})
    return (str(filename), tuple(sorted((name, str(value)) for name, value in attributes.items())))


def drop_repeated_scripts(app: Sphinx, pagename: str, templatename: str,
                          context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
