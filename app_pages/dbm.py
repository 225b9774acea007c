"""Deep Boltzmann machines: the lecture's slides "Deep Boltzmann Machines", "Model Formation", "Approximate
Learning" and "Good Generative Model?", live on a two-layer DBM trained on binarized MNIST."""
import streamlit as st

from app import dbm_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "Deep Boltzmann machines",
    "Stack a second hidden layer on an RBM and keep every connection undirected: h1 now hears the pixels "
    "below *and* h2 above. Learning follows the RBM's gradient, data term minus model term, but both are "
    "intractable: mean field approximates the posterior (data term) and persistent Gibbs chains the model's "
    "own distribution (model term). Built greedily from RBMs, then trained jointly "
    "(Salakhutdinov & Hinton 2009).",
    r"P_\theta(\mathbf v,\mathbf h^{1},\mathbf h^{2})=\frac{1}{\mathcal Z(\theta)}\exp\Big(\mathbf v^{\top}W^{1}"
    r"\mathbf h^{1}+\mathbf h^{1\top}W^{2}\mathbf h^{2}+\mathbf b^{\top}\mathbf v+\mathbf c^{\top}\mathbf h^{1}"
    r"+\mathbf d^{\top}\mathbf h^{2}\Big)",
    r"\frac{\partial\log P_\theta(\mathbf v)}{\partial W^{1}}=\underbrace{\mathbf E_{P_{data}}[\mathbf v"
    r"\mathbf h^{1\top}]}_{\text{mean field}}-\underbrace{\mathbf E_{P_\theta}[\mathbf v\mathbf h^{1\top}]}"
    r"_{\text{persistent chains}}",
)

VIEWS = {
    "inference": ("Mean-field inference", views.inference),
    "compare": ("DBN vs DBM", views.compare),
    "samples": ("Good generative model?", views.samples),
    "likelihood": ("Likelihood", views.likelihood),
    "train": ("Train", views.train),
}

require_mnist()
source = views.model_picker()
if source is None:
    st.info("No DBM is available: none is bundled with this installation. Train one below, "
            "or run `make train-dbm`.")
    VIEWS = {"train": VIEWS["train"]}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="dbm_view")
VIEWS[view][1](source)
