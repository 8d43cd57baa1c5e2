"""hepnn.flows: conditional normalizing flows with exact log-likelihoods: rational-quadratic
spline and affine coupling layers, permutations, a fixed standardisation, and Flow (log_prob,
sample). The spline runs in the C++ / CUDA kernels of _core (forward, inverse, backward).

Example:
    >>> import hepnn
    >>> from hepnn.flows import build_flow
    >>> flow = build_flow(3, context_features=1, layers=2)
    >>> lp = flow.log_prob(hepnn.randn(8, 3), hepnn.randn(8, 1))
    >>> lp.shape
    (8,)
"""
from .._ops_spline import rq_spline
from .coupling import AffineCoupling, RQSpline
from .flow import Flow, build_flow
from .training import fit_flow
from .transforms import Permutation, Standardize, Transform

__all__ = ["Flow", "build_flow", "RQSpline", "AffineCoupling", "Permutation", "Standardize",
           "Transform", "fit_flow", "rq_spline"]
