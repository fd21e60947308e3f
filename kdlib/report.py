"""The README's and the book's generated tables, from the artifacts (never trains).

``python -m kdlib report`` (or ``python -m kdlib.report``) rewrites the results table between
the markers of README.md and, with ``--book``, the claims table of the book's entry page and
the CSV files it links to. The rows are ``kdlib.claims.claims_table``: every claim of
Section 3 with its verdict; the runs and their provenance are ``kdlib.results``.
"""
from __future__ import annotations

import csv
import os
from io import StringIO
from pathlib import Path

from .claims import claims_markdown, claims_table
from .io import atomic_write_bytes
from .results import provenance_rows, total_compute_hours

README_START, README_END = "<!-- results-table:start -->", "<!-- results-table:end -->"


def _marked_text(path: Path) -> str:
    """The text of ``path``, which must hold the generated-table markers (checked before any
    artifact is read)."""
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path}: no {README_START} ... {README_END} markers")
    return text


def _replace_marked(path: Path, block: str) -> None:
    """Replace what lies between the markers of ``path`` by ``block`` (atomic write)."""
    head, rest = _marked_text(path).split(README_START, 1)
    new = head + README_START + "\n" + block + "\n" + README_END + rest.split(README_END, 1)[1]
    atomic_write_bytes(path, new.encode())


def update_readme(readme="README.md", results_dir=None, profile: str = "full") -> str:
    """Rewrite the README's results table (between its markers) from the artifacts."""
    path = Path(readme)
    _marked_text(path)
    rows = claims_table(results_dir, profile)
    runs = provenance_rows(results_dir, profile)
    seeds = sorted({r["seed"] for r in runs})
    table = (f"Generated from `results/{profile}/` by `python -m kdlib.report --readme` "
             f"({len(runs)} runs, seeds {', '.join(map(str, seeds))}, "
             f"{total_compute_hours(runs)} h of compute; where only one seed exists the "
             "spread is not yet measured). Details, figures and the verdict rules: "
             "`notebooks/05_results.ipynb`.\n\n" + claims_markdown(rows))
    _replace_marked(path, table)
    return table


# ----------------------------------------------------------------------------- the book
BOOK_INTRO = "book/intro.md"
BOOK_DATA = "book/data"


def claims_csv(rows: list[dict]) -> str:
    """The claims table as CSV (one row per claim, the columns of ``claims_markdown``)."""
    out = StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "claim", "paper", "ours", "replicated", "rule"])
    writer.writerows([i + 1, r["claim"], r["paper"], r["ours"], r["replicated"], r.get("rule", "")]
                     for i, r in enumerate(rows))
    return out.getvalue()


def runs_csv(rows: list[dict]) -> str:
    """Every run's provenance (``provenance_rows``) as CSV."""
    out = StringIO()
    fields = ["experiment", "run", "seed", "test_errors", "commit", "kdlib", "torch", "device",
              "wall_time_s", "status"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def verdict_sentence(rows: list[dict]) -> str:
    """How many claims replicate, as one sentence (for the book's entry page)."""
    tested = [r for r in rows if r["replicated"] == "yes" or r["replicated"].startswith("no")]
    yes = [i + 1 for i, r in enumerate(rows) if r["replicated"] == "yes"]
    missing = len(rows) - len(tested)
    text = (f"Of the {len(rows)} claims, {len(tested)} could be tested and {len(yes)} replicate by "
            f"the rule of the results chapter (claims {', '.join(map(str, yes)) or 'none'})")
    return text + (f"; {missing} have no runs yet." if missing else ".")


def update_book(intro=BOOK_INTRO, data_dir=BOOK_DATA, results_dir=None,
                profile: str = "full") -> str:
    """Rewrite the entry page's verdict and claims table (between its markers) and write the
    CSV files the book links to (``claims.csv``, ``runs.csv`` in ``data_dir``)."""
    path = Path(intro)
    _marked_text(path)
    rows = claims_table(results_dir, profile)
    runs = provenance_rows(results_dir, profile)
    seeds = sorted({r["seed"] for r in runs})
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(data / "claims.csv", claims_csv(rows).encode())
    atomic_write_bytes(data / "runs.csv", runs_csv(runs).encode())
    link = Path(os.path.relpath(data / "claims.csv", path.parent)).as_posix()
    runs_link = Path(os.path.relpath(data / "runs.csv", path.parent)).as_posix()
    # The {table} directive holds exactly one table; the rules listed under it follow it.
    lines = claims_markdown(rows).splitlines()
    table = "\n".join(line for line in lines if line.startswith("|"))
    notes = "\n".join(line for line in lines if line.strip() and not line.startswith("|"))
    block = (f"{verdict_sentence(rows)}\n\n"
             f"```{{table}} The claims of Section 3: the paper's numbers and ours (mean ± sd "
             f"over seeds, {len(runs)} runs, seeds {', '.join(map(str, seeds))}, "
             f"{total_compute_hours(runs)} h of compute)\n:name: tab-claims\n\n"
             + table + "\n```\n\n" + (notes + "\n\n" if notes else "")
             + f"Download: {{download}}`this table as CSV <{link}>`, "
             f"{{download}}`every run's provenance as CSV <{runs_link}>`. Generated from the "
             f"artifacts in `results/{profile}/` by `python -m kdlib.report --book`.")
    _replace_marked(path, block)
    return block




def main(argv=None) -> int:
    """``python -m kdlib report [--readme [PATH]] [--book] [--profile P]``."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m kdlib report")
    parser.add_argument("--readme", nargs="?", const="README.md", default="README.md",
                        help="README to update (default README.md)")
    parser.add_argument("--book", action="store_true",
                        help=f"also update {BOOK_INTRO} and the CSV files in {BOOK_DATA}")
    parser.add_argument("--profile", default="full")
    args = parser.parse_args(argv)
    print(update_readme(args.readme, profile=args.profile))
    if args.book:
        print(update_book(profile=args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
