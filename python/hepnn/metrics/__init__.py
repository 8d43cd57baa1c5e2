"""hepnn.metrics: ROC curve, AUC and background rejection with event weights (cross-checked
against scikit-learn), discovery significance (s/sqrt(b), Asimov) and the weighted two-sample
KS test used as an overtraining check; for generative models, calorimeter shower observables,
per-observable distances (separation power, 1-Wasserstein) and a classifier two-sample test.
NumPy only (the classifier test trains a hepnn MLP).

Example:
    >>> import numpy as np, hepnn.metrics as M
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000); score = y + rng.normal(size=1000)
    >>> 0.7 < M.roc_auc_score(y, score) < 0.8, M.background_rejection(y, score, 0.5) > 2
    (True, True)
"""
from .ks import kolmogorov_sf, ks_2samp
from .roc import auc, background_rejection, roc_auc_score, roc_curve
from .significance import asimov_significance, significance
from .compare import separation_power, wasserstein1
from .c2st import classifier_two_sample_test
from .showers import centre_and_width, energy_response, layer_energy, shower_observables, voxel_centres

__all__ = ["roc_curve", "auc", "roc_auc_score", "background_rejection", "significance",
           "asimov_significance", "ks_2samp", "kolmogorov_sf"]
__all__ += ["separation_power", "wasserstein1", "classifier_two_sample_test", "layer_energy",
            "energy_response", "centre_and_width", "shower_observables", "voxel_centres"]
