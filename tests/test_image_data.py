"""Tests of audiolab.data.images: the IDX reader (against torchvision's reader), synthetic sets, mixtures."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest
import torch

from audiolab.data.images import (IDX_FILES, IdxError, MixturePairs, find_idx_folder, fixed_pairs, load_idx_split,
                                 read_idx, synthetic_digits, synthetic_garments, to_float_images)


def write_idx(path, array: np.ndarray, compress: bool = True, truncate: int = 0, magic: bytes | None = None):
    """Write ``array`` (uint8) in the IDX format; ``truncate`` drops that many payload bytes."""
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(np.uint8).tobytes()
    raw = header + (payload[:-truncate] if truncate else payload)
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)
    return path


def make_idx_folder(folder, n_train=12, n_test=6, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        img, lab = IDX_FILES[split]
        write_idx(folder / f"{img}.gz", rng.integers(0, 256, size=(n, 28, 28)))
        write_idx(folder / f"{lab}.gz", rng.integers(0, 10, size=n))
    return folder


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    arr = np.random.default_rng(1).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    path = write_idx(tmp_path / ("x.gz" if compress else "x"), arr, compress=compress)
    np.testing.assert_array_equal(read_idx(path, expect_ndim=3), arr)


def test_read_idx_errors(tmp_path):
    arr = np.zeros((4, 28, 28), dtype=np.uint8)
    with pytest.raises(IdxError, match="does not exist"):
        read_idx(tmp_path / "missing.gz")
    with pytest.raises(IdxError, match="truncated"):  # header says 4 images, payload shorter
        read_idx(write_idx(tmp_path / "short.gz", arr, truncate=100))
    with pytest.raises(IdxError, match="not an IDX file"):
        read_idx(write_idx(tmp_path / "magic.gz", arr, magic=b"\x1f\x8b\x08\x03"))
    with pytest.raises(IdxError, match="dimensions"):
        read_idx(write_idx(tmp_path / "labels.gz", np.zeros(4, dtype=np.uint8)), expect_ndim=3)
    # a gzip stream cut in the middle (a partial download)
    good = write_idx(tmp_path / "good.gz", np.random.default_rng(0).integers(0, 256, size=(50, 28, 28)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(IdxError, match="truncated|cannot be read"):
        read_idx(cut)


def test_load_idx_split_checks_counts_and_layouts(tmp_path):
    folder = make_idx_folder(tmp_path / "mnist")
    images, labels = load_idx_split(folder, "test")
    assert images.shape == (6, 28, 28) and labels.shape == (6,) and images.dtype == np.uint8
    # torchvision's layout is found as well
    tv = tmp_path / "tv" / "FashionMNIST" / "raw"
    shutil.copytree(folder, tv)
    assert find_idx_folder(tmp_path / "tv", "fashion_mnist") == tv
    assert find_idx_folder(tmp_path / "tv", "mnist") is None
    # image / label count mismatch
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(IdxError, match="6 images but"):
        load_idx_split(folder, "test")


def test_synthetic_sets_are_deterministic_and_distinct():
    d1, d2 = synthetic_digits(64, seed=3), synthetic_digits(64, seed=3)
    g = synthetic_garments(64, seed=3)
    np.testing.assert_array_equal(d1, d2)
    assert d1.shape == g.shape == (64, 28, 28) and d1.dtype == g.dtype == np.uint8
    assert not np.array_equal(synthetic_digits(64, seed=3, split="test"), d1)
    # MNIST-like digits: thin strokes on black, border empty; garments: broad areas
    assert d1[:, :2, :].max() == 0
    assert (g > 20).mean() > 1.5 * (d1 > 20).mean()


def test_mixture_pairs_redraw_every_epoch():
    a = to_float_images(synthetic_digits(50, seed=0))
    b = to_float_images(synthetic_garments(50, seed=0))
    loader = MixturePairs(a, b, n_pairs=40, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert len(loader) == 3
    epoch1 = list(loader)
    epoch2 = list(loader)
    x, a1, b1 = epoch1[0]
    torch.testing.assert_close(x, (a1 + b1) / 2)
    assert float(a1.min()) >= 0 and float(a1.max()) <= 1
    assert sum(len(batch[0]) for batch in epoch1) == 40
    assert not torch.equal(epoch1[0][0], epoch2[0][0])  # new pairs each epoch


def test_fixed_pairs_are_fixed_and_unique():
    ia, ib = fixed_pairs(500, 300, 200, seed=7)
    ja, jb = fixed_pairs(500, 300, 200, seed=7)
    assert torch.equal(ia, ja) and torch.equal(ib, jb)
    assert len(set(ia.tolist())) == 200 and len(set(ib.tolist())) == 200


@pytest.mark.realdata
def test_real_idx_matches_torchvision_reader(shared_data, tmp_path):
    """Our reader against torchvision's own IDX parser on the official t10k files."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for name, stems in (("mnist", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
                        ("fashion_mnist", ("t10k-labels-idx1-ubyte",))):
        folder = find_idx_folder(shared_data, name)
        if folder is None:
            pytest.skip(f"{name} not in the shared data")
        images, labels = load_idx_split(folder, "test")
        assert images.shape == (10000, 28, 28) and set(np.unique(labels)) == set(range(10))
        for stem in stems:
            ours = images if "images" in stem else labels
            raw = tmp_path / f"{name}-{stem}"
            with gzip.open(folder / f"{stem}.gz", "rb") as src:
                raw.write_bytes(src.read())
            reader = read_image_file if "images" in stem else read_label_file
            np.testing.assert_array_equal(reader(str(raw)).numpy(), ours)
