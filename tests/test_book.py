"""The book's source is as the generators leave it: notebook tags and twins
(tools/tag_notebooks.py), the entry page's claims table and CSV files (kdlib.analysis.report --book),
and no repository link while none is configured. Cheap: nothing is executed or built."""
from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tagger = _load("tag_notebooks", ROOT / "tools" / "tag_notebooks.py")
buttons = _load("repository_buttons", ROOT / "book" / "_ext" / "repository_buttons.py")


def cells(path: Path):
    return nbformat.read(path, as_version=4).cells


def test_notebooks_are_tagged_and_paired():
    """tools/tag_notebooks.py --check: tags, the run-elsewhere cell and the .md twins current."""
    stale = [c for nb in NOTEBOOKS for c in tagger.process(nb, tagger.repository_url(), write=False)]
    assert stale == [], f"stale: {stale}; run .venv/bin/python tools/tag_notebooks.py"


def test_tagging_twice_changes_nothing():
    for path in NOTEBOOKS:
        once = tagger.normalise(nbformat.read(path, as_version=4), "")
        twice = tagger.normalise(once, "")
        assert nbformat.writes(once) == nbformat.writes(twice), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_plumbing_is_shown(path):
    """Shown code cells (no remove/hide tag) call no glue() and are no parameter cells."""
    for cell in cells(path):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code":
            continue
        if {"parameters", "injected-parameters"} & set(tags) or "from myst_nb import glue" in cell.source:
            assert "remove-cell" in tags, cell.source[:80]
        if not {"remove-cell", "remove-input", "hide-input"} & set(tags):
            assert not tagger.GLUE.search(cell.source), cell.source[:200]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_shows_values_not_identifiers(path):
    """No constant of the library (UPPER_CASE) and no dataclass repr in the text or outputs."""
    for cell in cells(path):
        if cell.cell_type == "markdown" and "remove-cell" not in cell.metadata.get("tags", []):
            prose = re.sub(r"```.*?```", "", cell.source, flags=re.S)
            assert not re.search(r"`(kdlib\.\w+\.)?[A-Z][A-Z0-9_]{3,}`", prose), prose[:300]
        for out in cell.get("outputs", []):
            text = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/markdown", ""))
            assert "TrainSpec(" not in text
            assert not re.search(r"\b[0-9a-f]{40}\b", text), "a 40-character commit hash"
            assert "(1 threads)" not in text


def test_tag_rules():
    code = nbformat.v4.new_code_cell
    assert tagger.tags_for(code("x = 1", metadata={"tags": ["parameters"]})) == ["remove-cell"]
    assert tagger.tags_for(code("", metadata={"tags": ["injected-parameters"]})) == ["remove-cell"]
    assert tagger.tags_for(code("from myst_nb import glue\nimport numpy")) == ["remove-cell"]
    glue_only = code('glue("a", 1, display=False)')
    assert tagger.tags_for(glue_only) == ["remove-cell"]
    shown = code('glue("a", 1, display=False)\nprint(1)',
                 outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    assert tagger.tags_for(shown) == ["hide-input"]
    assert tagger.tags_for(code("display(Markdown(table))")) == ["hide-input"]
    assert tagger.tags_for(code("q = softmax_with_temperature(z, 2)")) == []
    assert tagger.tags_for(code("x.glue(1)")) == []


def test_the_run_elsewhere_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                         nbformat.v4.new_code_cell("x = 1")])
    without = tagger.normalise(nb, "")
    assert without.cells[1].cell_type == "markdown" and "no public address" in without.cells[1].source
    url = "https://github.com/someone/kd-book"
    with_url = tagger.normalise(without, url)
    cell = with_url.cells[1]
    assert cell.cell_type == "code" and url in cell.source and '"google.colab" in sys.modules' in cell.source
    assert cell.metadata["tags"] == ["remove-cell"]
    assert len(with_url.cells) == 3  # replaced, not added again
    assert with_url.metadata["jupytext"]["formats"] == "ipynb,md:myst"


def test_no_repository_means_no_buttons():
    assert tagger.repository_url() == "", "set only once the repository is public"

    class Config:
        html_theme_options = {"repository_url": "https://github.com/kd-book/kd-book",
                              "use_repository_button": True, "use_issues_button": True,
                              "launch_buttons": {"colab_url": "https://colab.research.google.com"}}
        html_context = {}

    buttons.set_repository_buttons(None, Config)
    options = Config.html_theme_options
    assert options["use_repository_button"] is False and options["use_issues_button"] is False
    assert options["launch_buttons"] == {} and options["repository_url"] == ""

    Config.html_theme_options = {"repository_url": "https://github.com/someone/kd-book",
                                 "use_repository_button": False,
                                 "launch_buttons": {"colab_url": "https://colab.research.google.com"}}
    buttons.set_repository_buttons(None, Config)
    assert Config.html_theme_options["use_repository_button"] is True
    assert Config.html_theme_options["launch_buttons"]["colab_url"]


def _claims_output_of_results_notebook(call: str = "claims.claims_markdown(rows)") -> str:
    """The claims table the results notebook computed (glued, not shown: the entry page shows it)."""
    for cell in cells(ROOT / "notebooks" / "05_results.ipynb"):
        if call in cell.source:
            for out in cell.outputs:
                data = out.get("data", {})
                text = data.get("text/markdown") or data.get("application/papermill.record/text/markdown")
                if text:
                    return text.strip()
    raise AssertionError("05_results.ipynb computes no claims table")


def test_entry_page_holds_the_results_notebooks_claims_table():
    """book/intro.md's generated block and book/data/claims.csv match the results notebook."""
    from kdlib.analysis.report import README_END, README_START
    intro = (ROOT / "book" / "intro.md").read_text()
    block = intro.split(README_START, 1)[1].split(README_END, 1)[0]
    shown = _claims_output_of_results_notebook().splitlines()
    table = "\n".join(line for line in shown if line.startswith("|"))
    notes = [line for line in shown if line.strip() and not line.startswith("|")]
    assert table in block, "run: .venv/bin/python -m kdlib.analysis.report --book"
    assert all(note in block for note in notes), "run: .venv/bin/python -m kdlib.analysis.report --book"
    with open(ROOT / "book" / "data" / "claims.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["claim"] for r in rows] == [line.split(" | ")[1]
                                          for line in table.splitlines()[2:]]
    assert intro.index(README_START) < intro.index("## About this book")


def test_every_notebook_renders_its_markdown_tables():
    """Tables displayed with IPython's Markdown render as tables only with myst-nb's gfm
    format (chapters 6 and 9 first showed them as raw text without it)."""
    assert NOTEBOOKS
    missing = [nb.name for nb in NOTEBOOKS
               if json.loads(nb.read_text())["metadata"].get("mystnb", {})
               .get("render_markdown_format") != "gfm"]
    assert missing == []


TWINS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md"))


def code_cells_of_twin(text: str) -> list[str]:
    """The sources of the ``{code-cell}`` blocks of a MyST-markdown notebook twin."""
    return re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", text, flags=re.M | re.S)


def test_code_cells_of_twin_finds_definitions():
    twin = ("text\ndef not_code():\n\n```{code-cell} ipython3\n---\ntags: [x]\n---\n"
            "x = 1\ndef f():\n    pass\n```\n")
    (cell,) = code_cells_of_twin(twin)
    assert re.search(r"^(async )?def ", cell, flags=re.M) and "not_code" not in cell


@pytest.mark.parametrize("path", TWINS, ids=lambda p: p.stem)
def test_no_function_is_defined_in_a_notebook(path):
    """Issue 13: the library holds the logic; a notebook's code cells only call it."""
    defined = [line for cell in code_cells_of_twin(path.read_text())
               for line in cell.splitlines() if re.match(r"(async )?def ", line)]
    assert defined == [], f"{path.name} defines {defined}; move them into kdlib"


def test_readme_says_where_the_paper_teacher_runs_stand_from_their_checkpoints():
    """The README's table of the paper teacher's runs is generated from the committed runs."""
    from kdlib.analysis.report import TEACHER_END, TEACHER_START, paper_teacher_table
    readme = (ROOT / "README.md").read_text()
    block = readme.split(TEACHER_START, 1)[1].split(TEACHER_END, 1)[0].strip()
    assert block == paper_teacher_table(ROOT / "results", "full"), \
        "run: .venv/bin/python -m kdlib report --readme"


def test_readme_and_entry_page_hold_the_results_notebooks_beyond_section_3_rows():
    """The rows of Sections 4-6 (kdlib.analysis.study_claims) in the README and book/intro.md are the
    ones the results notebook shows."""
    from kdlib.analysis.report import README_END, README_START
    shown = _claims_output_of_results_notebook("claims.claims_markdown(beyond_rows")
    table = [line for line in shown.splitlines() if line.startswith("|")]
    assert "Claim (Sections 4-6)" in table[0] and len(table) > 2
    for page in (ROOT / "README.md", ROOT / "book" / "intro.md"):
        block = page.read_text().split(README_START, 1)[1].split(README_END, 1)[0]
        assert all(line in block for line in table), \
            f"run: .venv/bin/python -m kdlib report --book ({page.name})"


def test_no_prose_line_starts_with_a_percent_sign():
    """MyST reads a line that starts with % as a comment: a reflowed "... 25.9 ± 1.2\\n% after
    lowering ..." silently lost the rest of its sentence in the conclusions."""
    for path in sorted((ROOT / "book").glob("*.md")):
        bad = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if line.startswith("%")]
        assert bad == [], f"{path.name}: lines {bad} start with % (a MyST comment)"
