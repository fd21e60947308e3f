"""Does the running environment match ``requirements-lock.txt``?

``python -m kdlib.runs.envcheck`` compares ``pip freeze --exclude-editable`` of the interpreter that
runs it (the project's ``.venv`` under ``make``) with the lock file written by ``make lock``, and
exits 1 with one line per package that differs (locked vs installed version, locked but not
installed, installed but not locked) and the command that fixes it. ``make test`` runs it through
``tests/test_environment.py``.

Ignored on both sides (:data:`IGNORED`): ``kdlib`` itself (installed editable from the checkout,
so ``pip freeze --exclude-editable`` leaves it out of the lock) and pip's own bookkeeping
packages ``pip``, ``setuptools``, ``wheel`` and ``distribute``, which ``venv`` seeds in its own
versions and which ``pip freeze`` omits or lists depending on the Python version.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from pathlib import Path

from .provenance import LOCK_FILE

ROOT = Path(__file__).resolve().parents[2]
IGNORED = frozenset({"kdlib", "pip", "setuptools", "wheel", "distribute"})
FIX = ("Fix: `rm -rf .venv && make venv` (a fresh venv with exactly the locked versions; plain "
       "`make venv` is enough after a pull that changed the lock, because the venv stamp "
       "depends on it). If requirements.txt changed on purpose, run `make lock` and commit "
       f"the new {LOCK_FILE}.")


def canonical(name: str) -> str:
    """PEP 503 normalised project name: ``Jinja2``, ``typing_extensions`` -> ``jinja2``,
    ``typing-extensions``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_freeze(text: str, source: str = "freeze") -> dict[str, str]:
    """``{canonical name: version}`` of ``pip freeze`` / lock-file text. A direct-URL line
    (``name @ file:///...``) maps to ``"@ <url>"``. Blank lines, ``#`` comments and option
    lines (``-e ...``, ``--hash``) are skipped; anything else that is not ``name==version`` or a
    name listed twice raises ``ValueError``."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):
            continue
        if " @ " in line:
            name, url = line.split(" @ ", 1)
            value = "@ " + url.strip()
        elif "==" in line:
            name, value = line.split("==", 1)
            value = value.split(";", 1)[0].strip()
        else:
            raise ValueError(f"{source}, line {n}: expected 'name==version', got {raw!r}")
        key = canonical(name.split("[", 1)[0].strip())
        if not key or not value:
            raise ValueError(f"{source}, line {n}: expected 'name==version', got {raw!r}")
        if key in out:
            raise ValueError(f"{source}, line {n}: {key} is listed twice")
        out[key] = value
    return out


def compare(locked: dict[str, str], installed: dict[str, str],
            ignored=IGNORED) -> list[str]:
    """One human-readable line per package that differs, sorted by name; [] when they match.
    Both mappings come from :func:`parse_freeze` (canonical names)."""
    diffs = []
    for name in sorted((set(locked) | set(installed)) - set(ignored)):
        want, have = locked.get(name), installed.get(name)
        if want == have:
            continue
        if have is None:
            diffs.append(f"{name}: locked {want}, not installed")
        elif want is None:
            diffs.append(f"{name}: installed {have}, not in the lock")
        else:
            diffs.append(f"{name}: locked {want}, installed {have}")
    return diffs


def report(diffs: list[str], lock: Path, prefix: str = sys.prefix) -> str:
    count = "1 package differs" if len(diffs) == 1 else f"{len(diffs)} packages differ"
    head = f"The environment at {prefix} does not match {lock.name} ({count}):"
    return "\n".join([head] + ["  " + d for d in diffs] + [FIX])


def pip_freeze(python: str = sys.executable) -> str:
    """``pip freeze --exclude-editable`` of ``python``'s environment (the command ``make lock``
    uses, so both sides are written by the same code)."""
    return subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                          capture_output=True, text=True, timeout=300).stdout


def check(lock: Path | None = None, freeze_text: str | None = None) -> list[str]:
    """The differences between the lock file and the running environment ([] = match)."""
    lock = ROOT / LOCK_FILE if lock is None else Path(lock)
    if not lock.exists():
        raise FileNotFoundError(f"no {lock}: run `make lock` and commit it")
    locked = parse_freeze(lock.read_text(), str(lock))
    installed = parse_freeze(pip_freeze() if freeze_text is None else freeze_text, "pip freeze")
    return compare(locked, installed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kdlib.runs.envcheck",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--lock", type=Path, default=ROOT / LOCK_FILE,
                    help="lock file (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        diffs = check(args.lock)
    except (FileNotFoundError, ValueError) as e:
        print(f"envcheck: {e}", file=sys.stderr)
        return 1
    if diffs:
        print(report(diffs, args.lock), file=sys.stderr)
        return 1
    n = len(set(parse_freeze(args.lock.read_text())) - IGNORED)
    sha = hashlib.sha256(args.lock.read_bytes()).hexdigest()[:16]
    print(f"envcheck: {sys.prefix} matches {args.lock} ({n} packages, lock_sha256 {sha})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
