"""Turning a user's image upload into an MNIST-like 28x28 digit, with clear errors for bad files."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 20_000_000


class BadUpload(ValueError):
    """The upload is not an image we can use; the message says why."""


def to_mnist(data: bytes) -> np.ndarray:
    """Any-size PNG/JPEG -> (28, 28) float32 in [0, 1], white digit on black, fitted into 20x20 and centred.

    Dark-on-light drawings (the usual photo or scan) are inverted so the digit is bright like MNIST."""
    if not data:
        raise BadUpload("the file is empty")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as e:
        raise BadUpload(f"this is not a readable PNG or JPEG image ({type(e).__name__})") from e
    grey = np.asarray(ImageOps.exif_transpose(image).convert("L"), dtype=np.float32) / 255.0
    if grey.size == 0 or grey.max() - grey.min() < 0.1:
        raise BadUpload("the image is blank: there is no digit to see")
    if np.median(grey) > 0.5:  # light background: invert to a bright digit on black
        grey = 1.0 - grey
    grey = (grey - grey.min()) / (grey.max() - grey.min())
    return fit_digit(grey)


def fit_digit(grey: np.ndarray) -> np.ndarray:
    """Crop to the ink, scale the longer side to 20 px, and centre by mass in a 28x28 frame."""
    rows, cols = np.nonzero(grey > 0.2)
    crop = grey[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = 20.0 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS),
                       dtype=np.float32) / 255.0
    out = np.zeros((28, 28), dtype=np.float32)
    ys, xs = np.indices(small.shape)
    total = small.sum() or 1.0
    cy, cx = (ys * small).sum() / total, (xs * small).sum() / total
    top = int(np.clip(round(14 - cy), 0, 28 - small.shape[0]))
    left = int(np.clip(round(14 - cx), 0, 28 - small.shape[1]))
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(out, 0, 1)
