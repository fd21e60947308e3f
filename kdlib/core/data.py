"""MNIST as whole-dataset tensors, transfer sets, and batched jitter.

The paper's MNIST experiments (Section 3) train on the 60,000 training images and
report errors on the 10,000 test images. Everything here keeps the data as one tensor
on the chosen device so that training never touches per-sample Python.

Data sources, in order:

* ``root`` argument, or the folder named by ``KDLIB_DATA``: the four original IDX files
  (``.gz`` or uncompressed). Their uncompressed SHA-256 is checked against the official
  values unless ``verify=False`` (for custom data in the same format).
* otherwise torchvision's normal download into ``~/.cache/kdlib`` (needs internet).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from .io import ArtifactError, atomic_write_bytes
from .transfer import TransferSet

#: SHA-256 of the four *uncompressed* official MNIST files (LeCun, Cortes & Burges).
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FILES = tuple(OFFICIAL_SHA256)
NUM_CLASSES = 10
IMAGE_SIDE = 28
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049


class DataError(ValueError):
    """The data folder is missing, incomplete, corrupt or not in MNIST's IDX format."""


def cache_dir() -> Path:
    return Path(os.environ.get("KDLIB_CACHE", Path.home() / ".cache" / "kdlib"))


# ----------------------------------------------------------------------------- reading files
def _read_raw(folder: Path, name: str) -> bytes:
    """Bytes of the uncompressed IDX file ``name`` from ``folder`` (``name`` or ``name.gz``)."""
    plain, packed = folder / name, folder / f"{name}.gz"
    if plain.is_file():
        return plain.read_bytes()
    if packed.is_file():
        try:
            with gzip.open(packed, "rb") as f:
                return f.read()
        except (EOFError, OSError, gzip.BadGzipFile) as e:
            raise DataError(f"{packed}: truncated or not a valid gzip file ({e}); "
                            "copy it again from the original source") from e
    raise DataError(f"{folder}: missing MNIST file {name}.gz (or {name}); the folder must hold "
                    f"all four of {', '.join(f + '.gz' for f in FILES)}")


def _check_idx(name: str, raw: bytes, path: Path) -> int:
    """Validate an IDX header and length; return the number of items."""
    images = "images" in name
    header = 16 if images else 8
    if len(raw) < header:
        raise DataError(f"{path / name}: only {len(raw)} bytes, too short for an IDX header")
    magic, count = struct.unpack(">II", raw[:8])
    expected_magic = _IMAGES_MAGIC if images else _LABELS_MAGIC
    if magic != expected_magic:
        raise DataError(f"{path / name}: wrong magic number {magic}, expected {expected_magic} "
                        f"({'uint8 images, 3 dims' if images else 'uint8 labels, 1 dim'})")
    item = 1
    if images:
        rows, cols = struct.unpack(">II", raw[8:16])
        if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
            raise DataError(f"{path / name}: images are {rows}x{cols}, expected 28x28")
        item = rows * cols
    if len(raw) != header + count * item:
        raise DataError(f"{path / name}: {len(raw)} bytes but the header announces {count} items "
                        f"({header + count * item} bytes); the file is truncated or corrupt")
    return count


def verify_folder(folder: str | os.PathLike, verify: bool = True) -> dict[str, bytes]:
    """Read, validate and (if ``verify``) checksum the four IDX files of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"MNIST folder {folder} {what}; set KDLIB_DATA to the folder "
                        "holding the four MNIST .gz files, or unset it to download")
    raw = {name: _read_raw(folder, name) for name in FILES}
    counts = {name: _check_idx(name, raw[name], folder) for name in FILES}
    for split in ("train", "t10k"):
        n_img, n_lab = counts[f"{split}-images-idx3-ubyte"], counts[f"{split}-labels-idx1-ubyte"]
        if n_img != n_lab:
            raise DataError(f"{folder}: {split} has {n_img} images but {n_lab} labels")
        labels = raw[f"{split}-labels-idx1-ubyte"][8:]
        if labels and max(labels) >= NUM_CLASSES:
            raise DataError(f"{folder / (split + '-labels-idx1-ubyte')}: label {max(labels)} "
                            f"outside the class range 0..{NUM_CLASSES - 1}")
    if verify:
        for name, data in raw.items():
            digest = hashlib.sha256(data).hexdigest()
            if digest != OFFICIAL_SHA256[name]:
                raise DataError(
                    f"{folder / name}(.gz): SHA-256 of the uncompressed file is {digest}, expected "
                    f"the official {OFFICIAL_SHA256[name]}; the file is corrupt or altered. Copy it "
                    "again, or pass verify=False (--no-verify-data) if this is custom IDX data")
    return raw


@lru_cache(maxsize=4)
def _prepared_root(folder: str, verify: bool, mtimes: tuple) -> Path:
    """Write the validated, uncompressed files where torchvision's MNIST expects them."""
    raw = verify_folder(folder, verify)
    key = hashlib.sha256(b"".join(hashlib.sha256(raw[n]).digest() for n in FILES)).hexdigest()[:16]
    root = cache_dir() / f"mnist-{key}"
    raw_dir = root / "MNIST" / "raw"
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            target = raw_dir / name
            if not target.is_file() or target.stat().st_size != len(raw[name]):
                atomic_write_bytes(target, raw[name])
    except (OSError, ArtifactError) as e:
        cause = e.__cause__ if isinstance(e, ArtifactError) else e
        raise DataError(f"cannot write the MNIST cache {raw_dir}: "
                        f"{getattr(cause, 'strerror', None) or cause}; set KDLIB_CACHE to a "
                        "writable folder") from e
    return root


# ----------------------------------------------------------------------------- the dataset
@dataclass
class MNIST:
    """Whole MNIST splits as tensors on one device: uint8 images (N, 28, 28), int64 labels."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str = ""

    def to(self, device) -> "MNIST":
        return MNIST(*(t.to(device) for t in (self.train_images, self.train_labels,
                                               self.test_images, self.test_labels)), self.source)

    def subset(self, train: int | None = None, test: int | None = None) -> "MNIST":
        """The first ``train`` training and ``test`` test examples (for smoke runs)."""
        return MNIST(self.train_images[:train], self.train_labels[:train],
                     self.test_images[:test], self.test_labels[:test], self.source)


def load_mnist(root: str | os.PathLike | None = None, *, device="cpu",
               verify: bool = True) -> MNIST:
    """Load MNIST through ``torchvision.datasets.MNIST`` into whole-dataset tensors.

    ``root`` (default: ``$KDLIB_DATA``) is a folder of the four IDX files; without either,
    torchvision downloads MNIST into ``~/.cache/kdlib/download``. ``verify=False`` switches
    off the official SHA-256 check, for custom data in MNIST's format.
    """
    from torchvision import datasets

    root = root if root is not None else os.environ.get("KDLIB_DATA") or None
    if root is not None:
        folder = str(Path(root).resolve())
        mtimes = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                              for p in Path(folder).glob("*") if p.is_file())) \
            if Path(folder).is_dir() else ()
        tv_root, source = _prepared_root(folder, verify, mtimes), folder
    else:
        tv_root = cache_dir() / "download"
        datasets.MNIST(tv_root, train=True, download=True)
        datasets.MNIST(tv_root, train=False, download=True)
        verify_folder(tv_root / "MNIST" / "raw", verify)
        source = "torchvision download"
    train = datasets.MNIST(tv_root, train=True, download=False)
    test = datasets.MNIST(tv_root, train=False, download=False)
    return MNIST(train.data.clone(), train.targets.clone(), test.data.clone(),
                 test.targets.clone(), source).to(device)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (..., 28, 28) -> float32 vectors (..., 784) in [0, 1]."""
    return images.reshape(*images.shape[:-2], -1).to(torch.float32).div_(255.0)


# ----------------------------------------------------------------------------- transfer sets
def _check_classes(classes) -> list[int]:
    classes = sorted({int(c) for c in classes})
    if not classes or classes[0] < 0 or classes[-1] >= NUM_CLASSES:
        raise ValueError(f"classes must be a non-empty set of digits 0..9, got {classes}")
    return classes


def class_mask(labels: torch.Tensor, classes) -> torch.Tensor:
    """Boolean mask of the examples whose label is in ``classes``."""
    return torch.isin(labels, torch.tensor(_check_classes(classes), device=labels.device))


def transfer_mask(labels: torch.Tensor, transfer: str) -> torch.Tensor:
    """Which training examples form the transfer set (``kdlib.core.transfer``): "all", "drop:3"
    (Section 3: 'omitting all examples of 3') or "keep:7,8" ('only 7s and 8s')."""
    t = TransferSet.parse(transfer)
    if t.kind == "all":
        return torch.ones_like(labels, dtype=torch.bool)
    if t.kind == "drop":
        return ~class_mask(labels, t.classes)
    if t.kind == "keep":
        return class_mask(labels, t.classes)
    raise ValueError(f"transfer set {transfer!r} is not a mask of classes; its study selects it")


# ----------------------------------------------------------------------------- jitter
def jitter(images: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None,
           shifts: torch.Tensor | None = None) -> torch.Tensor:
    """Shift every image of a batch by its own random integer (dy, dx) in [-max_shift, max_shift].

    The vacated border is zero-filled. One gather for the whole batch, no per-sample Python.
    ``images`` is (B, H, W) or (B, H*W) with square images; the output has the input's shape.
    ``shifts`` (B, 2) can be given instead of drawing them (for tests).
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    flat = images.dim() == 2
    if flat:
        side = int(round(images.shape[1] ** 0.5))
        images = images.reshape(-1, side, side)
    b, h, w = images.shape
    if max_shift == 0 or b == 0:
        return images.reshape(b, -1) if flat else images
    if shifts is None:
        shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator,
                               device=generator.device if generator is not None else images.device)
        shifts = shifts.to(images.device)
    p = max_shift
    padded = torch.nn.functional.pad(images, (p, p, p, p))
    rows = (p - shifts[:, :1]) + torch.arange(h, device=images.device)  # (B, H)
    cols = (p - shifts[:, 1:]) + torch.arange(w, device=images.device)  # (B, W)
    out = padded[torch.arange(b, device=images.device)[:, None, None], rows[:, :, None],
                 cols[:, None, :]]
    return out.reshape(b, -1) if flat else out
