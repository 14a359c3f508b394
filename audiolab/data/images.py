"""Image data for ``vae_bss.py images``: MNIST / Fashion-MNIST IDX files and a synthetic stand-in.

- ``read_idx``: the IDX format of LeCun et al. (http://yann.lecun.com/exdb/mnist/, "FILE
  FORMATS"), gzipped or not, with the header (magic number, type code, dimensions) and
  the payload size checked, so a missing, truncated or foreign file is a clear
  :class:`IdxError`, never a silently short array.
- ``find_idx_folder`` / ``load_idx_split``: a folder holding the four official files
  (``train-images-idx3-ubyte.gz`` ...) in the releases' own names, either flat
  (``<root>/mnist``, ``<root>/fashion_mnist``) or in torchvision's layout
  (``<root>/MNIST/raw``, ``<root>/FashionMNIST/raw``); ``download_idx`` fetches them with
  ``torchvision.datasets`` (``--download``).
- ``synthetic_digits`` / ``synthetic_garments``: the embedded default that needs no
  network: scikit-learn's bundled 8x8 handwritten digits (UCI optdigits), upsampled to
  20x20 and placed in a 28x28 frame like MNIST, and procedurally drawn garment
  silhouettes (T-shirt, trousers, pullover, dress, bag, sneaker, boot) with random
  shading and texture. Labelled synthetic everywhere it is used.
- ``MixturePairs``: mixtures ``x = (a + b) / 2`` of a random image of each set, the pairs
  re-drawn every time it is iterated (every epoch); ``fixed_pairs`` gives the fixed test
  pairs.
- ``load_mnist_fashion``: the train / test images of both sets for ``--dataset``: the IDX
  files when found under the data root (or downloaded with ``--download``), else the
  synthetic stand-in.

Images are ``uint8 [N, 28, 28]`` on disk and ``float32 [N, 1, 28, 28]`` in ``[0, 1]`` once
loaded for training.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audiolab.core.runtime import UserError
from audiolab.data.common import RealDataset, choose_dataset, resolve_data_root
from audiolab.data.splits import refuse_overlap

IMAGE_SIZE = 28
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# type codes of the IDX format -> numpy big-endian dtypes
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
# flat folder name, torchvision class name, how to get it
IMAGE_SETS = {
    "mnist": ("mnist", "MNIST", "MNIST: http://yann.lecun.com/exdb/mnist/ (or run with --download); put the four "
                                "*-ubyte.gz files in <data-root>/mnist/"),
    "fashion_mnist": ("fashion_mnist", "FashionMNIST",
                      "Fashion-MNIST: https://github.com/zalandoresearch/fashion-mnist (or run with --download); "
                      "put the four *-ubyte.gz files in <data-root>/fashion_mnist/"),
}


class IdxError(UserError):
    """An IDX file is missing, truncated or not an IDX file of the expected kind."""


# --------------------------------------------------------------------------- IDX files
def read_idx(path: str | Path, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally ``.gz``) into a NumPy array, checking header and size.

    The header is two zero bytes, a type code (0x08 = unsigned byte ...), the number of
    dimensions ``n``, then ``n`` big-endian uint32 sizes; the payload must hold exactly
    ``prod(sizes)`` items.

    Args:
        path: the file (``*.gz`` is decompressed).
        expect_ndim: if given, the number of dimensions the file must have (3 for
            images, 1 for labels).

    Returns:
        array of shape ``sizes`` in native byte order (``uint8`` for MNIST).

    Raises:
        IdxError: missing file, broken gzip stream, bad magic number, unexpected number
            of dimensions, or a payload shorter/longer than the header says.
    """
    path = Path(path)
    if not path.is_file():
        raise IdxError(f"IDX file {path} does not exist")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # truncated gzip -> EOFError, corrupt -> BadGzipFile/zlib
        raise IdxError(f"IDX file {path} cannot be read ({type(err).__name__}: {err}); "
                       "it is probably truncated: delete it and download it again") from None
    if len(raw) < 4:
        raise IdxError(f"IDX file {path} is too short ({len(raw)} bytes) to hold a header")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise IdxError(f"{path} is not an IDX file (magic bytes {raw[:4].hex()}; expected 0000 + type + ndim, "
                       "e.g. 00000803 for images)")
    if expect_ndim is not None and ndim != expect_ndim:
        raise IdxError(f"IDX file {path} has {ndim} dimensions, expected {expect_ndim}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IdxError(f"IDX file {path} is truncated inside its header")
    sizes = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(sizes, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header_len
    if got != expected:
        raise IdxError(f"IDX file {path} is {'truncated' if got < expected else 'too long'}: header says "
                       f"{'x'.join(map(str, sizes))} items ({expected} bytes) but the payload has {got} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(sizes).astype(dtype.newbyteorder("="))


def _idx_path(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def idx_folder_candidates(data_root: Path, name: str) -> list[Path]:
    """Folders under ``data_root`` where set ``name`` (``mnist``/``fashion_mnist``) may live."""
    flat, tv_name, _ = IMAGE_SETS[name]
    return [data_root / flat, data_root / tv_name / "raw", data_root / tv_name]


def find_idx_folder(data_root: str | Path, name: str) -> Path | None:
    """The first candidate folder that holds all four IDX files of ``name`` (gz or not), else None."""
    for folder in idx_folder_candidates(Path(data_root), name):
        if folder.is_dir() and all(_idx_path(folder, s) for pair in IDX_FILES.values() for s in pair):
            return folder
    return None


def load_idx_split(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, 28, 28]`` and labels ``uint8 [N]`` of ``split`` (``train``/``test``).

    Raises:
        IdxError: a file is missing, truncated or malformed, images are not 28x28, or
            the image and label counts differ.
    """
    folder = Path(folder)
    img_stem, lab_stem = IDX_FILES[split]
    paths = []
    for stem in (img_stem, lab_stem):
        p = _idx_path(folder, stem)
        if p is None:
            raise IdxError(f"{folder} has no {stem}.gz (nor {stem}); it needs the four official IDX files")
        paths.append(p)
    images = read_idx(paths[0], expect_ndim=3)
    labels = read_idx(paths[1], expect_ndim=1)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise IdxError(f"{paths[0]} holds {images.shape[1]}x{images.shape[2]} images, expected 28x28")
    if len(images) != len(labels):
        raise IdxError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
    return images.astype(np.uint8), labels.astype(np.uint8)


def download_idx(data_root: str | Path, name: str) -> Path:
    """Download set ``name`` with ``torchvision.datasets`` into ``<data_root>/<Class>/raw``.

    Raises:
        UserError: the download failed (e.g. no network).
    """
    from torchvision import datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST}[name]
    root = Path(data_root)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as err:  # URLError, HTTPError, checksum errors
        raise UserError(f"downloading {name} with torchvision failed ({err}). {IMAGE_SETS[name][2]}") from None
    folder = find_idx_folder(root, name)
    if folder is None:
        raise UserError(f"torchvision downloaded {name} but the IDX files are not under {root}")
    return folder


# --------------------------------------------------------------------- synthetic sets
def synthetic_digits(n: int, seed: int = 0, split: str = "train") -> np.ndarray:
    """``uint8 [n, 28, 28]`` digit images from scikit-learn's bundled 8x8 digits (no network).

    The 1797 optdigits images (values 0..16) are split 80/20 into train/test sources,
    upsampled bilinearly to 20x20 (MNIST's digit box), contrast-stretched and pasted in a
    28x28 frame with a random shift of up to 2 pixels and a random stroke gain.
    """
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed + (0 if split == "train" else 10_000))
    digits = load_digits().images.astype(np.float32) / 16.0  # [1797, 8, 8]
    cut = int(0.8 * len(digits))
    pool = digits[:cut] if split == "train" else digits[cut:]
    idx = rng.integers(0, len(pool), size=n)
    up = F.interpolate(torch.from_numpy(pool[idx])[:, None], size=(20, 20), mode="bilinear",
                       align_corners=False)[:, 0].numpy()
    up = np.clip((up - 0.15) / 0.6, 0.0, 1.0) ** 0.8  # sharper strokes, black background like MNIST
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    shifts = rng.integers(-2, 3, size=(n, 2))
    gains = rng.uniform(0.8, 1.0, size=n)
    for i in range(n):
        r, c = 4 + shifts[i, 0], 4 + shifts[i, 1]
        out[i, r:r + 20, c:c + 20] = up[i] * gains[i]
    return (out * 255).round().astype(np.uint8)


def _polygon_mask(vertices: np.ndarray, grid: np.ndarray, size: int) -> np.ndarray:
    from matplotlib.path import Path as MplPath

    return MplPath(vertices).contains_points(grid).reshape(size, size)


GARMENTS = ("tshirt", "trousers", "pullover", "dress", "bag", "sneaker", "boot")


def _garment_polygon(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Polygons (in a unit square, y down) of one garment silhouette with random proportions."""
    j = lambda s=0.03: rng.uniform(-s, s)  # noqa: E731  (small jitter)
    w = rng.uniform(0.28, 0.38)  # half body width
    if kind in ("tshirt", "pullover"):
        sleeve = 0.22 if kind == "tshirt" else 0.62  # sleeve end height
        top, bot = 0.12 + j(), 0.9 + j()
        return [np.array([[0.5 - 0.1, top], [0.5 - w, top + 0.04], [0.04 + j(), top + 0.18],
                          [0.1 + j(), top + sleeve], [0.5 - w + 0.02, top + 0.22], [0.5 - w + 0.02, bot],
                          [0.5 + w - 0.02, bot], [0.5 + w - 0.02, top + 0.22], [0.9 + j(), top + sleeve],
                          [0.96 + j(), top + 0.18], [0.5 + w, top + 0.04], [0.5 + 0.1, top],
                          [0.5, top + 0.06 + j()]])]
    if kind == "trousers":
        top, bot, gap = 0.08 + j(), 0.94 + j(), rng.uniform(0.02, 0.06)
        return [np.array([[0.5 - w + 0.06, top], [0.5 + w - 0.06, top], [0.5 + w - 0.02, bot], [0.5 + gap, bot],
                          [0.5, top + 0.3], [0.5 - gap, bot], [0.5 - w + 0.02, bot]])]
    if kind == "dress":
        top, bot = 0.08 + j(), 0.94 + j()
        return [np.array([[0.5 - 0.12, top], [0.5 + 0.12, top], [0.5 + 0.16, top + 0.3],
                          [0.5 + w + 0.1, bot], [0.5 - w - 0.1, bot], [0.5 - 0.16, top + 0.3]])]
    if kind == "bag":
        top, bot = 0.35 + j(), 0.88 + j()
        body = np.array([[0.12 + j(), top], [0.88 + j(), top], [0.92, bot], [0.08, bot]])
        handle = np.array([[0.3, top], [0.34, 0.12 + j()], [0.66, 0.12 + j()], [0.7, top], [0.62, top],
                           [0.6, 0.2], [0.4, 0.2], [0.38, top]])
        return [body, handle]
    if kind == "sneaker":
        base = 0.72 + j()
        return [np.array([[0.04, base], [0.06, base - 0.18], [0.35, base - 0.3 + j()], [0.55, base - 0.34],
                          [0.62, base - 0.22], [0.96, base - 0.08], [0.96, base + 0.08], [0.04, base + 0.08]])]
    # boot
    base = 0.86 + j()
    return [np.array([[0.3, 0.1 + j()], [0.62, 0.1 + j()], [0.64, base - 0.3], [0.95, base - 0.12],
                      [0.96, base + 0.06], [0.26, base + 0.06], [0.28, base - 0.4]])]


def synthetic_garments(n: int, seed: int = 0, split: str = "train") -> np.ndarray:
    """``uint8 [n, 28, 28]`` procedurally drawn garment silhouettes (Fashion-MNIST stand-in).

    Each image is one of :data:`GARMENTS`, rasterised at 4x resolution and averaged down
    (anti-aliased edges), with a random base brightness, a vertical shading gradient and
    a texture (none, stripes or noise), so the set has Fashion-MNIST's broad, textured,
    mid-grey look rather than MNIST's thin strokes.
    """
    rng = np.random.default_rng(seed + (1 if split == "train" else 20_001))
    ss = 4
    size = IMAGE_SIZE * ss
    coords = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i in range(n):
        kind = GARMENTS[rng.integers(len(GARMENTS))]
        mask = np.zeros((size, size), dtype=bool)
        for poly in _garment_polygon(kind, rng):
            mask |= _polygon_mask(poly, grid, size)
        small = mask.reshape(IMAGE_SIZE, ss, IMAGE_SIZE, ss).mean(axis=(1, 3))
        base = rng.uniform(0.35, 1.0)
        shade = 1.0 - rng.uniform(0.0, 0.35) * np.linspace(0, 1, IMAGE_SIZE)[:, None]
        texture = rng.integers(3)
        if texture == 1:
            period = rng.integers(3, 7)
            stripes = 0.75 + 0.25 * (np.arange(IMAGE_SIZE) % period < period // 2)[:, None]
            shade = shade * stripes
        elif texture == 2:
            shade = shade * rng.uniform(0.75, 1.0, size=(IMAGE_SIZE, IMAGE_SIZE))
        out[i] = np.clip(small * base * shade, 0.0, 1.0)
    return (out * 255).round().astype(np.uint8)


# --------------------------------------------------------------------------- mixtures
def to_float_images(images: np.ndarray) -> torch.Tensor:
    """``uint8 [N, 28, 28]`` -> ``float32 [N, 1, 28, 28]`` in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)


def fixed_pairs(n_a: int, n_b: int, n_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs ``(idx_a [n_pairs], idx_b [n_pairs])`` drawn once with ``seed`` (the fixed test set).

    Indices are drawn without replacement when the sets are large enough, so no image
    appears twice.
    """
    gen = torch.Generator().manual_seed(seed)
    pick = lambda n: (torch.randperm(n, generator=gen)[:n_pairs] if n >= n_pairs  # noqa: E731
                      else torch.randint(0, n, (n_pairs,), generator=gen))
    return pick(n_a), pick(n_b)


def fixed_test_mixtures(data: dict, n_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed test set ``(x, a, b)``, ``x = (a + b) / 2``, from :func:`fixed_pairs` of ``data``'s test images."""
    ia, ib = fixed_pairs(len(data["a_test"]), len(data["b_test"]), n_pairs, seed)
    a, b = data["a_test"][ia], data["b_test"][ib]
    return (a + b) / 2, a, b


class MixturePairs:
    """Batches ``(x, a, b)`` with ``x = (a + b) / 2``, the pairs re-drawn on every iteration.

    Each pass (epoch) draws ``n_pairs`` random ``(a, b)`` pairs from the two image sets,
    so the model never sees the same mixture twice and cannot memorise pairings.

    Args:
        images_a, images_b: ``float32 [N, 1, 28, 28]`` in ``[0, 1]``.
        n_pairs: mixtures per epoch (default: the larger set's size).
        batch_size: mixtures per batch.
        generator: seeded ``torch.Generator`` (reproducible pairings).
    """

    def __init__(self, images_a: torch.Tensor, images_b: torch.Tensor, n_pairs: int | None = None,
                 batch_size: int = 128, generator: torch.Generator | None = None):
        self.a, self.b = images_a, images_b
        self.n_pairs = int(n_pairs or max(len(images_a), len(images_b)))
        self.batch_size = batch_size
        self.generator = generator or torch.Generator().manual_seed(0)

    def __len__(self) -> int:
        return (self.n_pairs + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        ia = torch.randint(0, len(self.a), (self.n_pairs,), generator=self.generator)
        ib = torch.randint(0, len(self.b), (self.n_pairs,), generator=self.generator)
        for start in range(0, self.n_pairs, self.batch_size):
            a = self.a[ia[start:start + self.batch_size]]
            b = self.b[ib[start:start + self.batch_size]]
            yield (a + b) / 2, a, b


def _download_both(data_root: Path) -> Path:
    """``--download``: fetch MNIST and Fashion-MNIST with torchvision into the data root; return the root."""
    download_idx(data_root, "mnist")
    download_idx(data_root, "fashion_mnist")
    return data_root


def load_mnist_fashion(dataset: str, data_root: str | Path | None, *, download: bool, seed: int,
                       synthetic_sizes: tuple[int, int], allow_overlap: bool = False) -> dict:
    """Train / test images of MNIST (``a``) and Fashion-MNIST (``b``), and where they came from.

    Args:
        dataset: ``auto`` (the IDX files if found under the data root, else synthetic),
            ``mnist_fashion`` or ``synthetic`` (the ``--dataset`` choices).
        data_root: ``--data-root`` (``None``: ``$AUDIOLAB_DATA``, else ``data/``).
        download: fetch the IDX files with torchvision when missing (``--download``).
        seed: seed of the synthetic training images (the synthetic test images use seed 0).
        synthetic_sizes: ``(n_train, n_test)`` images per synthetic set.
        allow_overlap: ``--allow-overlap``: test images equal to training images only warn
            (:func:`audiolab.data.splits.refuse_overlap`; none in the real sets).

    Returns:
        ``{"a_train", "b_train", "a_test", "b_test"}`` as ``float32 [N, 1, 28, 28]`` in ``[0, 1]``,
        plus ``dataset`` (``mnist_fashion`` or ``synthetic_images``), ``data_source``
        (``real`` / ``synthetic``) and ``names`` (the two sets' display names).

    Raises:
        UserError: the named real dataset is missing or unreadable (:class:`IdxError`), or a
            test image equals a training image.
    """
    root = resolve_data_root(data_root)
    both = RealDataset(
        name="mnist_fashion",
        find=lambda r: r if (find_idx_folder(r, "mnist") and find_idx_folder(r, "fashion_mnist")) else None,
        how_to_get=f"{IMAGE_SETS['mnist'][2]}; {IMAGE_SETS['fashion_mnist'][2]}",
        download=_download_both,
        looked_for="the four IDX files of each set in " + ", ".join(
            str(p) for n in IMAGE_SETS for p in idx_folder_candidates(Path("<root>"), n)))
    choice = choose_dataset(dataset, root, [both], "synthetic",
                            "sklearn 8x8 digits upsampled + drawn garments", download=download)
    if choice.synthetic:
        n_train, n_test = synthetic_sizes
        data = {"a_train": synthetic_digits(n_train, seed, "train"),
                "b_train": synthetic_garments(n_train, seed, "train"),
                "a_test": synthetic_digits(n_test, 0, "test"), "b_test": synthetic_garments(n_test, 0, "test")}
        names = ("synthetic digits", "synthetic garments")
    else:
        fa, fb = find_idx_folder(choice.path, "mnist"), find_idx_folder(choice.path, "fashion_mnist")
        data = {"a_train": load_idx_split(fa, "train")[0], "b_train": load_idx_split(fb, "train")[0],
                "a_test": load_idx_split(fa, "test")[0], "b_test": load_idx_split(fb, "test")[0]}
        names = ("MNIST", "Fashion-MNIST")
    for key, name in zip("ab", names):
        refuse_overlap(((f"train image {i}", x) for i, x in enumerate(data[f"{key}_train"])),
                       ((f"test image {i}", x) for i, x in enumerate(data[f"{key}_test"])), allow=allow_overlap,
                       what=name)
    out = {k: to_float_images(v) for k, v in data.items()}
    out.update(dataset="mnist_fashion" if not choice.synthetic else "synthetic_images",
               data_source=choice.source, names=names)
    return out
