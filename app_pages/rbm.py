"""Restricted Boltzmann machines: the lecture's slides "Restricted Boltzmann Machines",
"Maximum Likelihood Learning" and "Learning Features", live on a real model."""
import streamlit as st

from app import rbm_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "Restricted Boltzmann machines",
    "An RBM is a Markov random field with binary visible units **v** (the pixels) and binary hidden units "
    "**h** (the features), connected only across the two layers. Given one layer, the units of the other are "
    "independent, so both conditionals are logistic functions.",
    r"P_\theta(\mathbf v,\mathbf h)=\frac{1}{\mathcal Z(\theta)}\exp\Big(\sum_{i,j}W_{ij}v_ih_j+\sum_i b_iv_i"
    r"+\sum_j a_jh_j\Big)",
    r"p(h_j{=}1\mid\mathbf v)=\sigma\Big(a_j+\sum_i W_{ij}v_i\Big)\qquad "
    r"p(v_i{=}1\mid\mathbf h)=\sigma\Big(b_i+\sum_j W_{ij}h_j\Big)\qquad \sigma(x)=\frac{1}{1+e^{-x}}",
)

VIEWS = {
    "filters": ("Filters", views.filters),
    "features": ("A new image", views.features),
    "gibbs": ("Gibbs sampling", views.gibbs),
    "gradient": ("Learning signal", views.gradient),
    "train": ("Train", views.train),
    "likelihood": ("Likelihood (AIS)", views.likelihood),
}

require_mnist()
source = views.model_picker()
if source is None:
    st.info("No RBM is available: none is bundled with this installation. Train one below, "
            "or run `make train-bundled`.")
    VIEWS = {"train": VIEWS["train"]}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="rbm_view")
VIEWS[view][1](source)
