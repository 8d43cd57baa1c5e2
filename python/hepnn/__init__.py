"""hepnn: deep learning for particle physics with C++/CUDA kernels and a thin Python autograd."""
from . import _core

__version__ = "0.1.0"
