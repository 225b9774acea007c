"""Importance-weighted autoencoders: the lecture's slides "Importance Weighted Autoencoder" and
"Tighter Lower Bound", on bundled models."""
import streamlit as st

from app import iwae_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "Importance-weighted autoencoders",
    "The IWAE keeps the VAE's networks but trains on a tighter bound: the log of an average of k importance "
    "weights. With k = 1 it is the ELBO; as k grows the bound approaches log p(x), and the encoder is "
    "penalized less for posteriors that do not fit a single Gaussian (Burda, Grosse & Salakhutdinov, 2016).",
)

VIEWS = {"bound": ("L_k as k grows", views.bound), "compare": ("VAE vs IWAE", views.compare)}
require_mnist()
if not views.models_for_bound():
    st.info("No VAE or IWAE checkpoint is bundled with this installation.")
    st.stop()
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="iwae_view")
VIEWS[view][1]()
