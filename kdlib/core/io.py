"""Crash-safe files: every write goes to a temporary file, is fsynced, then renamed.

A run that is killed at any moment leaves either the old file or the new one, never a
half-written one. Readers name the file when it is corrupt.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch


class ArtifactError(ValueError):
    """An artifact or checkpoint is corrupt, half-written or from another config."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise ArtifactError(f"cannot write {path}: {e.strerror or e}; choose a writable "
                            "results folder (--results-dir)") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; artifacts are meant to be shared
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and prove it is writable now, not after hours of training."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ArtifactError(f"cannot write to {folder}: {e.strerror or e}; choose a writable "
                            "results folder (--results-dir)") from e
    return folder


def write_json(path, obj) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: corrupt or half-written JSON ({e}); delete it or rerun "
                            "with --force") from e


def write_npz(path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())


def read_npz(path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, EOFError, OSError
        raise ArtifactError(f"{path}: corrupt or half-written npz ({e}); delete it or rerun "
                            "with --force") from e


def write_torch(path, obj) -> Path:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def read_torch(path, map_location="cpu"):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ArtifactError(f"{path}: corrupt or half-written torch file ({e}); delete it or "
                            "rerun with --force") from e


@contextmanager
def exclusive_lock(path: str | os.PathLike, on_wait=None):
    """Hold an exclusive lock on ``path`` for the ``with`` block; yield whether it had to wait.

    ``fcntl.flock`` on a lock file that holds the holder's pid (Linux, macOS): the OS releases
    it when the holder dies, so a killed process never blocks another one. A second process
    calls ``on_wait(holder_pid)`` once and blocks until the lock is free. The holder removes
    the file before releasing it; a waiter that then finds another file (or none) at ``path``
    locks again. Where ``fcntl`` does not exist (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield False
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait(os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown")
                waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if current:
            break
        os.close(fd)  # the previous holder removed that file: lock the one at path now
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield waited
    finally:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)
