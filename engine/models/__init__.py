"""One file per model family; importing this package registers them all."""
from engine.models import rbm  # noqa: F401
