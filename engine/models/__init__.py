"""One file per model family; importing this package registers them all."""
from engine.models import autoencoder, classifier, dcgan, gan2d, glow, planar, pointgan, rbm, realnvp2d, txl, vae  # noqa: F401
from engine.models import wavenet  # noqa: F401  (WaveNet on spoken digits, issue 7)
from engine.models import made, nade  # noqa: F401  (MADE and NADE on binarized MNIST, issue 7)
from engine.models import pixelcnn  # noqa: F401  (PixelCNN and the gated PixelCNN on binarized MNIST, issue 7)
