"""The examples run end to end in a reduced mode and reach what they claim."""


def test_train_mlp_learns(example, capsys):
    accuracy = example("train_mlp").main(epochs=2)
    assert accuracy > 0.8
    out = capsys.readouterr().out
    assert "epoch  2" in out and "test accuracy" in out


def test_fit_line_agrees_with_closed_form(example):
    (slope, intercept), (w, b) = example("fit_line").main(steps=300)
    assert abs(slope - w) < 1e-3 and abs(intercept - b) < 1e-3


def test_higgs_ww_main_job_quick(example, tmp_path, capsys):
    results = example("higgs_ww").main(["--quick", "--out", str(tmp_path)])
    assert results["BDT (sklearn)"]["auc"] > 0.85 and results["MLP (hepnn)"]["auc"] > 0.8
    for name in ("roc.png", "loss.png", "scores.png", "hww_mlp.safetensors"):
        assert (tmp_path / name).stat().st_size > 0
    import hepnn
    from hepnn import nn

    model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 1))
    meta = hepnn.load(str(tmp_path / "hww_mlp.safetensors"), model=model)
    assert meta["features"][0] == "n_leptons"


def test_anomaly_autoencoder_quick(example):
    auc = example("anomaly_autoencoder").main(["--quick"])
    assert 0.5 < auc <= 1.0


def test_decorrelation_quick(example):
    res = example("decorrelation").main(["--quick"])
    (auc_plain, d_plain), (auc_disco, d_disco) = res["plain"], res["disco"]
    assert auc_plain > 0.75 and auc_disco > 0.6
    assert d_disco < 0.2 * d_plain  # the DisCo term removes most of the score-mT dependence


def test_top_tagging_quick(example, tmp_path, capsys):
    results = example("top_tagging").main(["--quick", "--out", str(tmp_path)])
    assert set(results) == {"particlenet", "part", "cnn"}
    for name, r in results.items():
        assert r["auc"] > 0.65, (name, r)
        assert r["rejection"][0] >= r["rejection"][1] > 1.0, (name, r)
    assert (tmp_path / "roc.png").stat().st_size > 0
    assert "1/eps_B at eps_S=0.3" in capsys.readouterr().out
