"""Olivetti faces as 25x25 grey-level images in [0, 1], flattened to 625, split by person.

Source: `olivettifaces.mat` (Sam Roweis's 64x64 version of the AT&T/ORL Database of Faces, credit
"AT&T Laboratories Cambridge") in `engine.data.data_dir() / "faces"`, that is `DGM_DATA_DIR/faces`
or `../shared/data/faces` beside the checkout. The file holds one variable, `faces`: uint8 (4096, 400),
each column a 64x64 image in MATLAB's column-major order; images 10k ... 10k+9 show person k (k = 0..39).

The "25x25 patches" of Hinton & Salakhutdinov (2006) are made here by downsampling each whole 64x64
face to 25x25 with PIL's area-averaging BOX filter (not by cutting patches out of the faces), then
scaling the pixels to [0, 1] by dividing by 255.

Split by person, so test faces are unseen people: persons 0-27 train (280 images), persons 28-31
valid (40 images, for choosing the training length), persons 32-39 test (80 images).
`batches("train", ...)` adds augmentation: a random horizontal flip and a random shift of up to
one pixel in each direction (edge pixels repeated), drawn per image from the given generator.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.data import DatasetUnavailable, data_dir

FILE = "olivettifaces.mat"
SIDE = 25  # images are SIDE x SIDE = 625 pixels
PERSONS = {"train": range(0, 28), "valid": range(28, 32), "test": range(32, 40)}
IMAGES_PER_PERSON = 10
_HINT = (f"put {FILE} (Sam Roweis's 64x64 Olivetti faces, 400 images) in a `faces` folder under "
         "DGM_DATA_DIR, or under ../shared/data next to the checkout")


def path() -> Path | None:
    """Where the .mat file is expected (None when there is no data folder at all)."""
    folder = data_dir()
    return None if folder is None else folder / "faces" / FILE


def available() -> bool:
    p = path()
    return p is not None and p.is_file()


def read_mat(file: Path) -> np.ndarray:
    """The 400 faces upright, uint8 (400, 64, 64), read with scipy.io.loadmat."""
    from scipy.io import loadmat

    try:
        raw = loadmat(file)["faces"]  # (4096, 400), column k = image k, column-major 64x64
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetUnavailable(f"could not read the Olivetti faces from {file}: {e}") from e
    if raw.shape != (4096, 400):
        raise DatasetUnavailable(f"{file}: expected `faces` of shape (4096, 400), got {raw.shape}")
    return np.ascontiguousarray(raw.T.reshape(400, 64, 64).transpose(0, 2, 1))  # undo column-major order


@lru_cache(maxsize=2)
def _all(file: str) -> torch.Tensor:
    from PIL import Image

    faces = read_mat(Path(file))
    small = [np.asarray(Image.fromarray(f).resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32)
             for f in faces]
    return torch.from_numpy(np.stack(small).reshape(400, SIDE * SIDE) / 255.0)  # (400, 625) in [0, 1]


def all_images() -> torch.Tensor:
    """All 400 faces, person by person: float32 (400, 625) in [0, 1]. Raises DatasetUnavailable."""
    p = path()
    if p is None or not p.is_file():
        where = "no data folder was found (DGM_DATA_DIR unset, no ../shared/data)" if p is None else f"{p} is missing"
        raise DatasetUnavailable(f"Olivetti faces not available: {where}; {_HINT}")
    return _all(str(p)).clone()


def persons(split: str) -> range:
    if split not in PERSONS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(PERSONS)}")
    return PERSONS[split]


def images(split: str = "train") -> torch.Tensor:
    """One person-disjoint split: (10 * persons, 625) float32 in [0, 1]."""
    who = persons(split)
    return all_images()[who.start * IMAGES_PER_PERSON:who.stop * IMAGES_PER_PERSON]


def augment(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a shift of -1, 0 or +1 pixel along each axis: (B, 625) -> (B, 625)."""
    b = len(x)
    im = x.reshape(b, 1, SIDE, SIDE)
    flip = torch.rand(b, generator=generator) < 0.5
    im = torch.where(flip[:, None, None, None], im.flip(-1), im)
    padded = F.pad(im, (1, 1, 1, 1), mode="replicate")  # (B, 1, 27, 27)
    dy, dx = torch.randint(0, 3, (2, b), generator=generator)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + SIDE, dx[i]:dx[i] + SIDE] for i in range(b)])
    return out.reshape(b, SIDE * SIDE)


def batches(split: str, batch_size: int, *, generator: torch.Generator, augmented: bool = True):
    """One shuffled epoch of (batch_size, 625) batches; training batches are augmented (see augment)."""
    x = images(split)
    order = torch.randperm(len(x), generator=generator)
    for i in range(0, len(x) - batch_size + 1, batch_size):
        batch = x[order[i:i + batch_size]]
        yield augment(batch, generator=generator) if augmented and split == "train" else batch


def describe(split: str = "test") -> str:
    who = persons(split)
    unseen = "" if split == "train" else ", people unseen in training"
    return (f"Olivetti faces {split} split: persons {who.start}-{who.stop - 1} ({len(who) * IMAGES_PER_PERSON} "
            f"images{unseen}), 64x64 downsampled to 25x25 (BOX filter), pixels in [0, 1]")
