"""One file per model family; importing this package registers them all."""
from engine.models import autoencoder, classifier, dcgan, rbm, vae  # noqa: F401
from engine.models import gan2d  # noqa: F401
from engine.models import planar, realnvp2d  # noqa: F401  (normalizing flows)
from engine.models import pointgan  # noqa: F401  (the point-cloud GAN)
