"""Sphinx extension: repository, issue and launch buttons exactly when there is a repository.

The repository URL is one setting, ``repository: url:`` in ``_config.yml``. Jupyter Book
refuses to build with ``use_repository_button`` but no URL, and fills a missing URL with its
own repository's, so the buttons cannot simply stay on. ``_config.yml`` therefore leaves the
button switches off, and this extension, before the theme reads its options, decides:

* with a URL (that is not a known placeholder): repository and issues buttons on, and the
  Colab launch button of ``launch_buttons`` kept;
* without one: every button that derives its link from the repository off (repository,
  issues, edit, source, Colab/Binder/JupyterHub launch).

The download button (the page's notebook or source, served by the book itself) stays.
"""
from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config

#: Not a repository of this project: Jupyter Book's default, and the old placeholder.
NOT_OURS = ("https://github.com/executablebooks/jupyter-book", "https://github.com/kd-book/kd-book")
REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button")
OTHER_BUTTONS = ("use_edit_page_button", "use_source_button")


def has_repository(url) -> bool:
    url = str(url or "").strip().rstrip("/")
    return url.startswith("https://") and url not in NOT_OURS


def set_repository_buttons(app: Sphinx, config: Config) -> None:
    options = dict(config.html_theme_options or {})
    if has_repository(options.get("repository_url")):
        for key in REPOSITORY_BUTTONS:
            options[key] = True
    else:
        options["repository_url"] = ""
        for key in REPOSITORY_BUTTONS + OTHER_BUTTONS:
            options[key] = False
        options["launch_buttons"] = {}
        context = dict(config.html_context or {})
        for key in ("github_url", "github_user", "github_repo"):
            context.pop(key, None)
        config.html_context = context
    config.html_theme_options = options


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", set_repository_buttons, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
