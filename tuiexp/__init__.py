"""tuiexp: queue, watch and fork PyTorch training runs from one terminal."""

__version__ = "0.1.0"
