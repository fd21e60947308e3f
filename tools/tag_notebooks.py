"""What the rendered book shows of each notebook, decided by rules rather than by hand.

    python tools/tag_notebooks.py           # rewrite tags, the "run it elsewhere" cell, the .md pairs
    python tools/tag_notebooks.py --check   # exit 1 (and say what) if anything would change

Run it after `make reproduce` (papermill replaces the injected-parameters cell and drops its
tags). Running it twice changes nothing; ``tests/test_book.py`` fails when a notebook is not
as this script would leave it.

Per notebook in ``notebooks/``:

* **Cell tags** (MyST-NB reads them when the book is built), computed from each cell:

  - ``parameters`` and papermill's ``injected-parameters`` cells: ``remove-cell``;
  - the set-up cell (the one that imports ``myst_nb.glue``): ``remove-cell``;
  - a code cell that calls ``glue(`` and shows nothing else (its outputs are glue records
    or nothing): ``remove-cell``; the values and figures appear where the text quotes them;
  - any other code cell that calls ``glue(``, ``display(``, or prints a provenance line:
    ``hide-input`` (its output is shown, its code folded behind a "show code" toggle);
  - every other code cell is the code the chapter is about and is shown as it is.

  Tags this script does not manage (``parameters``, ``injected-parameters``, ...) are kept.

* **A "running this notebook elsewhere" cell** right after the title, tagged ``remove-cell``
  (the book does not show it; a downloaded notebook has it). With a repository URL in
  ``_config.yml`` (``repository: url:``) it is a code cell that, only inside Google Colab,
  clones that repository and installs what the notebook imports; without one, a markdown
  note saying how to run the notebook from a clone.

* **A MyST-markdown twin** ``notebooks/<name>.md`` (jupytext pairing ``ipynb,md:myst``) with
  the same cells, without outputs: the notebook as reviewable text. ``make lab`` opens
  JupyterLab with jupytext, which keeps the two in step while editing.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CONFIG = ROOT / "_config.yml"
MANAGED = ("remove-cell", "remove-input", "hide-input")
ELSEWHERE_ID = "running-elsewhere"
PAIRING = "ipynb,md:myst"
GLUE = re.compile(r"(^|[^\w.])glue\(")
SHOWS = re.compile(r"(^|[^\w.])display\(|provenance_line\(")


def repository_url(config: Path = CONFIG) -> str:
    """The repository URL configured in ``_config.yml``, or "" when there is none."""
    data = yaml.safe_load(config.read_text()) or {}
    return str(((data.get("repository") or {}).get("url")) or "").strip()


def only_glue_records(cell) -> bool:
    """True when a code cell's outputs are all myst_nb glue records (or there are none)."""
    return all(out.get("output_type") == "display_data"
               and all(k.startswith("application/papermill.record/") for k in out.get("data", {}))
               for out in cell.get("outputs", []))


def tags_for(cell) -> list[str]:
    """The managed tag of a cell ([] or one of MANAGED) by the rules of the module docstring."""
    if cell.cell_type != "code":
        return ["remove-cell"] if cell.get("id") == ELSEWHERE_ID else []
    tags = cell.metadata.get("tags", [])
    source = cell.source
    if cell.get("id") == ELSEWHERE_ID:
        return ["remove-cell"]
    if "parameters" in tags or "injected-parameters" in tags:
        return ["remove-cell"]
    if "from myst_nb import glue" in source:
        return ["remove-cell"]
    if GLUE.search(source) and only_glue_records(cell):
        return ["remove-cell"]
    if GLUE.search(source) or SHOWS.search(source):
        return ["hide-input"]
    return []


def elsewhere_cell(url: str):
    """The cell that tells a reader of a downloaded notebook how to run it."""
    if url:
        cell = nbformat.v4.new_code_cell(
            "# Running in Google Colab: fetch the repository (code and results) and what the\n"
            "# notebook imports. Outside Colab this cell does nothing; run the notebook from\n"
            "# notebooks/ in a clone instead (see the README).\n"
            "import os\n"
            "import sys\n"
            "\n"
            'if "google.colab" in sys.modules and not os.path.isdir("/content/kd-book"):\n'
            f"    !git clone --depth 1 {url} /content/kd-book\n"
            "    %pip install -q myst-nb sympy\n"
            '    sys.path.insert(0, "/content/kd-book")\n'
            '    os.chdir("/content/kd-book/notebooks")')
    else:
        cell = nbformat.v4.new_markdown_cell(
            "**Running this notebook outside its repository.** It imports `kdlib` and reads the "
            "saved runs in `results/` of the kd-book repository, which has no public address "
            "yet, so it will not run on its own in Colab or elsewhere. In a copy of the "
            "repository: `make venv`, then `make lab` (or "
            "`.venv/bin/papermill --cwd notebooks notebooks/<this notebook>.ipynb out.ipynb`).")
    cell["id"] = ELSEWHERE_ID
    cell.metadata["tags"] = ["remove-cell"]
    return cell


def normalise(nb, url: str):
    """The notebook as this script leaves it (a new object; ``nb`` is not changed)."""
    nb = nbformat.from_dict(nb)
    cells = [c for c in nb.cells if c.get("id") != ELSEWHERE_ID]
    cells.insert(1 if cells and cells[0].cell_type == "markdown" else 0, elsewhere_cell(url))
    for cell in cells:
        kept = [t for t in cell.metadata.get("tags", []) if t not in MANAGED]
        tags = kept + tags_for(cell)
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    nb.cells = cells
    nb.metadata.setdefault("jupytext", {})["formats"] = PAIRING
    return nb


def markdown_twin(nb) -> str:
    """The MyST-markdown text of the notebook (jupytext), without outputs."""
    text = jupytext.writes(nb, fmt="md:myst")
    # jupytext records its own version in the header: drop it so the text depends only on
    # the notebook, not on which jupytext wrote it.
    return re.sub(r"\n\s*jupytext_version: [^\n]*", "", text)


def process(path: Path, url: str, write: bool) -> list[str]:
    """Bring one notebook and its twin up to date; return what was (or would be) changed."""
    changed = []
    old_text = path.read_text(encoding="utf-8")
    nb = normalise(nbformat.reads(old_text, as_version=4), url)
    new_text = nbformat.writes(nb)  # as papermill writes it: no newline at the end
    if new_text != old_text:
        changed.append(str(path.relative_to(ROOT)))
        if write:
            path.write_text(new_text, encoding="utf-8")
    twin = path.with_suffix(".md")
    md = markdown_twin(nb)
    if not twin.exists() or twin.read_text(encoding="utf-8") != md:
        changed.append(str(twin.relative_to(ROOT)))
        if write:
            twin.write_text(md, encoding="utf-8")
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
    args = parser.parse_args(argv)
    url = repository_url()
    changed = [c for nb in args.notebooks for c in process(nb.resolve(), url, not args.check)]
    for c in changed:
        print(("stale: " if args.check else "updated: ") + c)
    if args.check and changed:
        print("run: .venv/bin/python tools/tag_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
