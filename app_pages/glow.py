"""Glow on MNIST: the lecture's slides "Example: GLOW" (a multi-scale flow of actnorm, invertible 1x1
convolutions and affine couplings; sampling with a temperature; exact inference and interpolation in z),
live on the bundled Glow trained by the project's CLI."""
import streamlit as st

from app import glow_views as views
from app import widgets

widgets.header(
    "Glow on MNIST",
    "Glow stacks steps of three invertible layers (actnorm, an invertible 1×1 convolution that mixes channels, "
    "and an affine coupling), squeezes the image into more channels between levels and factors half of them "
    "out as latents. Every layer has a cheap log-determinant, so the likelihood is exact, and every layer can "
    "be undone, so sampling and inference are exact too.",
    r"\log p(x)=\log p_Z(\varepsilon)+\sum_{\ell}\log\left|\det\frac{\partial h_\ell}{\partial h_{\ell-1}}\right|,"
    r"\qquad \varepsilon=f^{-1}(x),\quad x=f(\varepsilon)",
)
if views.available():
    VIEWS = {
        "samples": ("Samples and temperature", views.samples),
        "encode": ("Encode and decode", views.encode),
        "interpolate": ("Interpolation", views.interpolate),
        "inside": ("Layer by layer", views.inside),
        "bits": ("Bits/dim", views.bits),
    }
    view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="glow_view")
    VIEWS[view][1]()
