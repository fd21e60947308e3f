"""Where a result came from: code version, git commit, library versions, device, seed."""
from __future__ import annotations

import datetime
import hashlib
import platform
import subprocess
from pathlib import Path

import torch

from .. import __version__


def git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "kdlib"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("+dirty" if sha and dirty else "")


class DirtyTreeError(RuntimeError):
    """A full-profile run was asked for from a working tree with uncommitted kdlib/ changes."""


def dirty_files() -> list[str]:
    """The files under kdlib/ with uncommitted changes (``git status --porcelain``); [] if clean
    or not a git checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "kdlib"], cwd=root,
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:].strip() for line in out.splitlines() if line.strip()]


def check_clean_tree(what: str) -> None:
    """Raise DirtyTreeError (naming the dirty files and ``--allow-dirty``) if ``git_commit()``
    is ``+dirty``: the artifacts of ``what`` would name a commit that did not make them."""
    if not git_commit().endswith("+dirty"):
        return
    files = dirty_files()
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    raise DirtyTreeError(
        f"refusing to train {what} from a working tree with uncommitted changes to kdlib/ "
        f"({shown or 'see git status'}): the artifacts would name a commit that did not make "
        "them. Commit the changes first, or pass --allow-dirty (run_configs(..., "
        "allow_dirty=True)) to train anyway; their provenance then records the commit as "
        "'<sha>+dirty'.")


LOCK_FILE = "requirements-lock.txt"


def lock_sha256(root: Path | None = None) -> str:
    """The first 16 hex characters of the SHA-256 of the whole lock file (``make lock``) in the
    repository root, header included (``sha256sum requirements-lock.txt | cut -c1-16``), or
    "none" when there is no lock file."""
    root = Path(__file__).resolve().parents[2] if root is None else Path(root)
    try:
        return hashlib.sha256((root / LOCK_FILE).read_bytes()).hexdigest()[:16]
    except OSError:
        return "none"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({torch.get_num_threads()} threads)"


def provenance(device: torch.device, seed: int) -> dict:
    return {
        "kdlib_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "lock_sha256": lock_sha256(),
        "device": str(device),
        "device_name": device_name(device),
        "seed": seed,
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
