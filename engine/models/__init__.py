"""One file per model family; importing this package registers them all."""
from engine.models import autoencoder, classifier, dcgan, gan2d, glow, planar, pointgan, rbm, realnvp2d, txl, vae  # noqa: F401
from engine.models import wavenet  # noqa: F401  (WaveNet on spoken digits, issue 7)
from engine.models import made, nade  # noqa: F401  (MADE and NADE on binarized MNIST, issue 7)
from engine.models import pixelcnn  # noqa: F401  (PixelCNN and the gated PixelCNN on binarized MNIST, issue 7)
from engine.models import helmholtz  # noqa: F401  (Helmholtz machine: wake-sleep, RWS and the same-width VAE, issue 9)
from engine.models import dbn  # noqa: F401  (deep belief net: greedy stack of RBMs, issue 9)
from engine.models import dbm  # noqa: F401  (deep Boltzmann machine, 2 hidden layers, issue 9)
from engine.models import parts  # noqa: F401  (part-based features on faces, issue 9)
