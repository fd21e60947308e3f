"""Real MNIST loading, transfer-set helpers and batched jitter (Section 3)."""
import hashlib

import pytest
import torch

from kdlib.core.data import (NUM_CLASSES, class_mask, jitter, load_mnist, transfer_mask,
                        to_float)


def test_real_mnist_shapes_and_counts(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_labels.dtype == torch.int64
    # the well-known class counts of the MNIST test set
    counts = torch.bincount(mnist.test_labels, minlength=NUM_CLASSES).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    # the loaded tensors, written back in IDX format, are bit-identical to the official files
    import struct

    from kdlib.core.data import OFFICIAL_SHA256
    for split, n in (("train", 60000), ("t10k", 10000)):
        images = mnist.train_images if split == "train" else mnist.test_images
        labels = mnist.train_labels if split == "train" else mnist.test_labels
        idx_images = struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes()
        idx_labels = struct.pack(">II", 2049, n) + labels.to(torch.uint8).numpy().tobytes()
        assert hashlib.sha256(idx_images).hexdigest() == OFFICIAL_SHA256[f"{split}-images-idx3-ubyte"]
        assert hashlib.sha256(idx_labels).hexdigest() == OFFICIAL_SHA256[f"{split}-labels-idx1-ubyte"]


def test_to_float_range(mnist):
    x = to_float(mnist.test_images[:100])
    assert x.shape == (100, 784) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1 and x.max() == 1


def test_transfer_sets(mnist):
    y = mnist.train_labels
    drop = transfer_mask(y, "drop:3")
    assert 3 not in y[drop].tolist() and int(drop.sum()) == 60000 - 6131
    keep = transfer_mask(y, "keep:7,8")
    assert set(y[keep].unique().tolist()) == {7, 8} and int(keep.sum()) == 6265 + 5851
    assert torch.equal(keep, class_mask(y, [7, 8])) and bool(transfer_mask(y, "all").all())
    for bad in ("drop:10", "keep:", "only:3", "subset:0", "subset:1.5", "specialist:3", "all:1"):
        with pytest.raises(ValueError, match=f"unknown transfer set '{bad}'.*digits 0-9"):
            transfer_mask(y, bad)
    with pytest.raises(ValueError, match="not a mask of classes"):
        transfer_mask(y, "subset:0.03")


def test_transfer_set_text_round_trips_and_bad_text_is_refused_when_a_run_is_made():
    from dataclasses import replace

    from kdlib.runs.catalogue import configs_for
    from kdlib.core.transfer import TransferSet
    for text in ("all", "drop:3", "keep:7,8", "subset:0.03", "specialist:k3g1"):
        assert str(TransferSet.parse(text)) == text
    assert TransferSet.parse("keep:7,8").classes == (7, 8)
    assert TransferSet.parse("specialist:k3g1") == TransferSet("specialist", clusters=3, group=1)
    cfg = configs_for("omit3", "smoke", [0])[0]
    with pytest.raises(ValueError, match="unknown transfer set 'drop:3,x'"):
        replace(cfg, transfer="drop:3,x")


def test_jitter_shifts_stay_within_two_pixels_and_keep_interior_mass(mnist):
    imgs = mnist.train_images[:2000].float()
    # digits with an empty 2-pixel border keep their whole ink under any shift of <= 2 px
    border = imgs.clone()
    border[:, 2:-2, 2:-2] = 0
    interior = imgs[border.flatten(1).sum(1) == 0]
    assert len(interior) > 1000
    g = torch.Generator().manual_seed(0)
    out = jitter(interior, 2, g)
    assert torch.allclose(out.flatten(1).sum(1), interior.flatten(1).sum(1))
    # recover each image's shift by matching it against all 25 candidate shifts
    found = set()
    for i in range(50):
        matches = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                   if torch.equal(out[i], torch.roll(interior[i], (dy, dx), (0, 1)))]
        assert matches and all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in matches)
        found.update(matches)
    assert len(found) > 10  # shifts really vary


def test_jitter_zero_fills_and_works_flat():
    img = torch.ones(1, 28, 28)
    out = jitter(img, 2, shifts=torch.tensor([[2, -1]]))
    assert out[0, :2].sum() == 0 and out[0, :, -1:].sum() == 0 and out[0, 2:, :-1].min() == 1
    flat = jitter(img.reshape(1, 784), 2, shifts=torch.tensor([[2, -1]]))
    assert torch.equal(flat.reshape(1, 28, 28), out)
    assert torch.equal(jitter(img, 0), img)
    with pytest.raises(ValueError, match="max_shift"):
        jitter(img, -1)


def test_jitter_is_deterministic_for_a_seed():
    x = torch.rand(64, 784)
    a = jitter(x, 2, torch.Generator().manual_seed(5))
    b = jitter(x, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, jitter(x, 2, torch.Generator().manual_seed(6)))


def test_load_caches_and_matches(mnist):
    again = load_mnist()
    assert torch.equal(again.test_images, mnist.test_images)
