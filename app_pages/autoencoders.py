"""Autoencoders vs PCA: the lecture's slides "Autoencoder", "Deep Autoencoder" and "Deep Autoencoder:
Information Retrieval", on real models."""
from app import ae_views as views
from app import widgets

widgets.header(
    "Autoencoders vs PCA",
    "An autoencoder is trained to reproduce its input through a narrow code: an **encoder** maps the image "
    "x to a code z with fewer numbers than pixels, and a **decoder** maps z back to an image. Linear, it "
    "finds the same subspace as PCA; deep and nonlinear, it reconstructs far better and its codes "
    "separate the digits (Hinton & Salakhutdinov, 2006).",
    r"\mathbf x\;\xrightarrow{\text{encoder}}\;\mathbf z\;\xrightarrow{\text{decoder}}\;\mathbf y\approx\mathbf x"
    r"\qquad \min\;\tfrac12\sum_n\|\mathbf y(\mathbf x_n)-\mathbf x_n\|^2",
)

VIEWS = {
    "shallow": ("Shallow autoencoder", views.shallow),
    "linear": ("Linear AE = PCA subspace", views.linear),
    "deep": ("Deep AE vs PCA(30)", views.deep),
    "codes": ("2-D codes", views.codes),
    "retrieval": ("Retrieval", views.retrieval),
}

views.require_mnist()
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="ae_view")
VIEWS[view][1]()
