"""Variational autoencoders: the lecture's slides "Variational Autoencoders", "Variational Bound",
"Reparameterization", "Computing Gradients" and "VAE Assumptions", live on bundled models."""
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
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="vae_view")
VIEWS[view][1]()
