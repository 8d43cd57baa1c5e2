"""The generative examples run end to end in their quick modes and learn something: fast
calorimeter simulation with a VAE, a GAN and a diffusion model (examples/calo_*.py), and the
CWoLa bump hunt (examples/cwola_bump.py). Timings printed by the examples are not checked."""
import os

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


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


def _torch_mlp(torch, mlp, act):
    """A torch copy (same weights) of a calo.nets.MLP."""
    layers = []
    for layer in mlp.layers:
        t = torch.nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(layer.weight.numpy().copy()))
            t.bias.copy_(torch.from_numpy(layer.bias.numpy().copy()))
        layers.append(t)

    def forward(x):
        for i, t in enumerate(layers):
            x = t(x)
            if i < len(layers) - 1:
                x = act(x)
        return x

    return forward, layers


def _showers(n=37):
    from calo import data

    v, e = data.calo_showers.generate(n, seed=9)
    scaler = data.VoxelScaler().fit(v, e)
    return scaler.transform(v, e), data.condition(e)


def test_vae_loss_and_gradients_match_torch(example):
    torch = pytest.importorskip("torch")
    import hepnn

    V = example("calo_vae")
    x, c = _showers()
    hepnn.manual_seed(1)
    model = V.CaloVAE(hidden=(24, 12), latent=5)
    model.log_sigma.data[...] = np.random.default_rng(2).normal(0, 0.3, 500).astype(np.float32)
    hepnn.manual_seed(3)
    loss = model.loss(hepnn.tensor(x), hepnn.tensor(c), beta=0.7)
    loss.backward()
    # hepnn.randn draws from NumPy's generator seeded by manual_seed: replay it for torch.
    noise = torch.from_numpy(np.random.default_rng(3).standard_normal((len(x), 5), dtype=np.float32))
    act = lambda t: torch.nn.functional.leaky_relu(t, 0.2)  # noqa: E731
    enc, enc_layers = _torch_mlp(torch, model.encoder, act)
    dec, _ = _torch_mlp(torch, model.decoder, act)
    log_sigma = torch.tensor(model.log_sigma.numpy(), requires_grad=True)
    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    h = enc(torch.cat([xt, ct], 1))
    mu, logvar = h[:, :5], h[:, 5:]
    z = mu + (0.5 * logvar).exp() * noise
    pull = (dec(torch.cat([z, ct], 1)) - xt) * (-log_sigma).exp()
    ref = 0.5 * (pull * pull).sum(1).mean() + log_sigma.sum() + \
        0.7 * 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(1).mean()
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(model.log_sigma.grad.numpy(), log_sigma.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.encoder.layers[0].weight.grad.numpy(), enc_layers[0].weight.grad.numpy(),
                               rtol=1e-3, atol=1e-5)


def test_diffusion_loss_and_gradients_match_torch(example):
    torch = pytest.importorskip("torch")
    import hepnn

    D = example("calo_diffusion")
    from calo.nets import sinusoidal_embedding

    x, c = _showers()
    hepnn.manual_seed(4)
    model = D.CaloDiffusion(steps=30, hidden=(40, 24))
    loss = model.loss(hepnn.tensor(x), hepnn.tensor(c), np.random.default_rng(5))
    loss.backward()
    rng = np.random.default_rng(5)  # the same draws, in the same order, as model.loss
    t = rng.integers(1, 31, len(x))
    eps = rng.standard_normal(x.shape, dtype=np.float32)
    ab = model.alpha_bar[t - 1][:, None]
    x_t = torch.from_numpy((np.sqrt(ab) * x + np.sqrt(1 - ab) * eps).astype(np.float32))
    net, layers = _torch_mlp(torch, model.denoiser, torch.nn.functional.gelu)
    emb = torch.from_numpy(sinusoidal_embedding(t * (1000.0 / 30), model.t_dim))
    pred = net(torch.cat([x_t, emb, torch.from_numpy(c)], 1)) + \
        x_t * torch.from_numpy(np.sqrt(1 - ab).astype(np.float32))
    ref = torch.nn.functional.mse_loss(pred, torch.from_numpy(eps))
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    for mine, theirs in zip(model.denoiser.layers, layers):
        np.testing.assert_allclose(mine.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-3, atol=1e-6)


def test_voxel_scaler_round_trip_and_dequantization(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES)
    from calo import data

    v, e = data.calo_showers.generate(200, seed=3)
    scaler = data.VoxelScaler().fit(v, e)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(v, e), e), v, rtol=1e-4, atol=1e-6)
    smeared = scaler.transform(v, e, np.random.default_rng(0))
    empty = v == 0
    assert not np.array_equal(smeared[empty], scaler.transform(v, e)[empty])
    np.testing.assert_array_equal(smeared[~empty], scaler.transform(v, e)[~empty])
    back = scaler.inverse(smeared, e)
    assert (back[empty] == 0).all()  # smeared empties stay below the readout threshold
