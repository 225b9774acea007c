"""Variational autoencoders: the lecture's slides "Variational Autoencoders", "Variational Bound",
"Reparameterization", "Computing Gradients" and "VAE Assumptions", live on bundled models."""
import streamlit as st

from app import vae_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "Variational autoencoders",
    "A VAE is a directed model: draw a code z from a simple prior, then pixels from a decoder network. "
    "An encoder network q(z|x) approximates the intractable posterior, and both are trained together by "
    "maximizing a lower bound on log p(x).",
)

VIEWS = {
    "bound": ("The bound", views.bound, views.MODEL_MAIN),
    "sliders": ("Latent sliders", views.sliders, views.MODEL_2D),
    "manifold": ("2-D manifold", views.manifold, views.MODEL_2D),
    "interpolate": ("Interpolation", views.interpolate, views.MODEL_20D),
    "encode": ("Encode a digit", views.encode, views.MODEL_2D),
    "train": ("Train", views.train, None),
}
VIEWS = {key: v for key, v in VIEWS.items() if v[2] is None or views.available(v[2])}
require_mnist()
view = st.segmented_control("View", list(VIEWS), format_func=lambda k: VIEWS[k][0], key="vae_view",
                            default=widgets.url_choice("view", list(VIEWS), next(iter(VIEWS))), required=True,
                            label_visibility="collapsed")
widgets.share(view=view)
st.divider()
VIEWS[view][1]()
