"""Shared fixtures: the real MNIST (from KDLIB_DATA, set by the Makefile) loaded once."""
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
if not os.environ.get("KDLIB_DATA") and (SHARED / "SHA256SUMS").exists():
    os.environ["KDLIB_DATA"] = str(SHARED)


@pytest.fixture(scope="session")
def mnist():
    from kdlib.core.data import load_mnist
    return load_mnist()
