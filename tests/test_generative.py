"""The generative examples run end to end in their quick modes and learn something: fast
calorimeter simulation with a VAE, a GAN and a diffusion model (examples/calo_*.py), and the
CWoLa bump hunt (examples/cwola_bump.py). Timings printed by the examples are not checked."""
import importlib
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES)

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def _check_report(res, name, out, max_mean_separation, max_auc):
    gen = res["generated"]
    assert gen.shape == (1000, 500) and np.isfinite(gen).all() and (gen >= 0).all()
    assert set(res["distances"]) >= {"E_layer0", "E_total/E_inc", "<x>_layer2", "width_r_layer4"}
    for obs, (sep, w1) in res["distances"].items():
        assert 0.0 <= sep <= 1.0 and w1 >= 0.0, obs
    assert res["mean_separation"] < max_mean_separation, res["mean_separation"]
    assert 0.45 < res["auc"] < max_auc, res["auc"]
    assert all(s > 0 for s in res["speed"])
    assert f"{name}: mean separation power" in out and "showers/s at batch 1" in out


def test_calo_vae_quick(example, capsys):
    res = example("calo_vae").main(["--quick"])
    _check_report(res, "VAE", capsys.readouterr().out, 0.2, 0.97)


def test_calo_gan_quick(example, capsys):
    res = example("calo_gan").main(["--quick"])
    _check_report(res, "GAN", capsys.readouterr().out, 0.5, 1.001)


def test_calo_diffusion_quick(example, capsys):
    res = example("calo_diffusion").main(["--quick"])
    _check_report(res, "diffusion", capsys.readouterr().out, 0.2, 0.98)


def test_diffusion_sampler_is_exact_for_gaussian_data(example):
    """With the ideal noise estimate of standard normal data (the skip term alone), ancestral
    sampling must return standard normal samples: checks the schedule and posterior algebra."""
    D = example("calo_diffusion")
    model = D.CaloDiffusion(n_voxels=7, steps=40, hidden=(8,))
    for layer in model.denoiser.layers[-1:]:
        layer.weight.data[...] = 0.0
        layer.bias.data[...] = 0.0
    x = model.sample(np.zeros((20000, 1), np.float32), np.random.default_rng(0), -10.0, 10.0)
    assert abs(x.mean()) < 0.02
    # The posterior variance (beta tilde) is the lower bound of the DDPM choices: std a bit < 1.
    assert 0.85 < x.std() < 1.02


def test_cwola_bump_quick(example, capsys):
    res = example("cwola_bump").main(["--quick"])
    assert 2.0 < res["before"] < 5.0
    assert max(res["after"].values()) > 2.0 * res["before"]
    out = capsys.readouterr().out
    assert "S/sqrt(B) in the signal region" in out
