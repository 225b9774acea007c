"""PixelCNN on binarized MNIST: the lecture's "Fully Observed Models" slides (density estimation by
autoregression; PixelCNN's masked convolutions) live on two networks trained by the project's CLI, a PixelCNN
and a gated PixelCNN. The headline view: digits generated pixel by pixel, with the model's beliefs beside them."""

from app import pixelcnn_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "PixelCNN, pixel by pixel",
    "A fully observed model writes the image's probability with the chain rule, one pixel at a time in raster "
    "order, and lets a network give every conditional. PixelCNN's network is a stack of **masked "
    "convolutions**: one pass computes all 784 conditionals at once for training and exact likelihoods, but "
    "sampling has to go pixel by pixel, because each pixel waits for the ones before it.",
    r"p(x)=\prod_{i=1}^{784} p(x_i\mid x_1,\dots,x_{i-1}),\qquad "
    r"p(x_i=1\mid x_{<i})=\sigma\big(\ell_i(x_{<i})\big)",
)
require_mnist()
nets = views.available()
if nets:
    VIEWS = {
        "generate": ("Watch it generate", views.generate),
        "complete": ("Completion", views.completion),
        "field": ("Receptive field", views.receptive),
        "masks": ("Masks and stacks", views.masks),
        "speed": ("Fast sampling", views.speed),
        "nll": ("Test NLL", views.nll),
    }
    view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="pcnn_view")
    VIEWS[view][1](nets)
