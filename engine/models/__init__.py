"""One file per model family; importing this package registers them all."""
from engine.models import autoencoder, classifier, dcgan, gan2d, glow, planar, pointgan, rbm, realnvp2d, txl, vae  # noqa: F401
