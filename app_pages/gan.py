"""Generative adversarial networks: the lecture's slides "Generative Adversarial Networks", "GAN
Formulation" (discriminator, generator, optimization), "Wasserstein GAN", "Modelling Point Cloud Data"
and "Interpolation in Latent Space", live on the 2-D lab and bundled models."""
from app import gan_lab_views as lab_views
from app import gan_mnist_views as mnist_views
from app import gan_cloud_views as cloud_views
from app import widgets

widgets.header(
    "Generative adversarial networks",
    "A generator G turns noise z into samples; a discriminator D tries to tell them from real data. "
    "They play a two-player game: D is trained to classify, G to fool D. The Wasserstein GAN replaces "
    "the classifier by a critic that estimates the earth mover's distance between the two distributions.",
    r"\min_G \max_D \; \mathbb{E}_{x \sim p_{data}} \log D(x) + \mathbb{E}_{z \sim p(z)} \log\big(1 - D(G(z))\big)",
)

# view id -> (button label, view function); each views module adds its own entries here.
VIEWS = {
    "lab": ("2-D lab", lab_views.lab),
    "mnist": ("MNIST samples", mnist_views.grids),
    "interpolate": ("Latent interpolation", mnist_views.interpolate),
    "quality": ("Quality: FD, precision, recall", mnist_views.quality),
    "clouds": ("Point clouds", cloud_views.clouds),
    "morph": ("Point-cloud morph", cloud_views.morph),
}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="gan_view")
VIEWS[view][1]()
