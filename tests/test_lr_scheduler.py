"""Learning-rate schedules against torch.optim.lr_scheduler over 50 epochs (exact values), plus
state_dict round trips and argument checks."""
import doctest
import math

import numpy as np
import pytest

import hepnn
from hepnn.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau, StepLR

torch = pytest.importorskip("torch")

EPOCHS = 50


def _pair(lr=0.1, groups=(1.0, 0.3)):
    """A hepnn and a torch optimizer with the same param groups (lrs lr * each of groups)."""
    ours = hepnn.optim.SGD([{"params": [hepnn.nn.Parameter(hepnn.zeros(2))], "lr": lr * g}
                            for g in groups], lr=lr)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr * g}
                              for g in groups], lr=lr)
    return ours, theirs


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("cls, kwargs", [
    (StepLR, dict(step_size=7, gamma=0.5)),
    (StepLR, dict(step_size=1, gamma=0.93)),
    (CosineAnnealingLR, dict(T_max=50)),
    (CosineAnnealingLR, dict(T_max=9, eta_min=1e-3)),  # passes through troughs and back up
    (CosineAnnealingLR, dict(T_max=1, eta_min=0.01)),
])
def test_epoch_schedules_match_torch(cls, kwargs):
    ours, theirs = _pair()
    s1 = cls(ours, **kwargs)
    s2 = getattr(torch.optim.lr_scheduler, cls.__name__)(theirs, **kwargs)
    seen = [_lrs(ours)]
    assert _lrs(ours) == _lrs(theirs)
    for epoch in range(EPOCHS):
        theirs.step()  # torch warns when the scheduler steps before the optimizer
        s1.step()
        s2.step()
        assert _lrs(ours) == _lrs(theirs), f"epoch {epoch}: {_lrs(ours)} vs {_lrs(theirs)}"
        assert s1.get_last_lr() == s2.get_last_lr()
        seen.append(_lrs(ours))
    assert len({tuple(v) for v in seen}) >= 2  # the schedule really moved


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(mode="min", factor=0.5, patience=2, threshold=0.05, threshold_mode="rel", cooldown=1),
    dict(mode="min", factor=0.3, patience=0, threshold=0.01, threshold_mode="abs", min_lr=1e-3),
    dict(mode="max", factor=0.5, patience=3, threshold=1e-3, threshold_mode="rel", cooldown=2),
    dict(mode="max", factor=0.2, patience=1, threshold=0.02, threshold_mode="abs",
         min_lr=[1e-4, 2e-3]),
])
def test_plateau_matches_torch(kwargs):
    rng = np.random.default_rng(5)
    # A noisy loss that improves, stalls, and improves again, so every branch is reached.
    values = np.concatenate([np.linspace(1.0, 0.5, 10), 0.5 + 0.02 * rng.standard_normal(25),
                             np.linspace(0.5, 0.3, 15)])
    ours, theirs = _pair()
    s1 = ReduceLROnPlateau(ours, **kwargs)
    s2 = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    reductions = 0
    for epoch, v in enumerate(values):
        before = _lrs(ours)
        s1.step(float(v))
        s2.step(float(v))
        assert _lrs(ours) == _lrs(theirs), f"epoch {epoch}"
        assert s1.num_bad_epochs == s2.num_bad_epochs and s1.cooldown_counter == s2.cooldown_counter
        reductions += _lrs(ours) != before
    assert reductions >= 1


def test_plateau_accepts_tensor_metric():
    opt, _ = _pair(groups=(1.0,))
    s = ReduceLROnPlateau(opt, patience=0)
    s.step(hepnn.tensor(1.0))
    s.step(hepnn.tensor(2.0))
    assert math.isclose(opt.param_groups[0]["lr"], 0.01)


@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, step_size=3, gamma=0.5),
    lambda o: CosineAnnealingLR(o, T_max=7, eta_min=1e-3),
])
def test_state_dict_resumes_the_same_schedule(make):
    full_opt, _ = _pair()
    full = make(full_opt)
    ref = []
    for _ in range(20):
        full.step()
        ref.append(_lrs(full_opt))

    opt_a, _ = _pair()
    a = make(opt_a)
    for _ in range(8):
        a.step()
    state, groups = a.state_dict(), [dict(g) for g in opt_a.param_groups]
    assert "optimizer" not in state
    # A fresh optimizer with the run's lrs and initial_lr, as a checkpoint restores them.
    opt_b, _ = _pair()
    for g, saved in zip(opt_b.param_groups, groups):
        g["lr"], g["initial_lr"] = saved["lr"], saved["initial_lr"]
    b = make(opt_b)
    b.load_state_dict(state)
    got = []
    for _ in range(12):
        b.step()
        got.append(_lrs(opt_b))
    assert got == ref[8:]


def test_plateau_state_dict_round_trip():
    opt, _ = _pair(groups=(1.0,))
    s = ReduceLROnPlateau(opt, patience=1, cooldown=2)
    for v in [1.0, 0.9, 0.95, 0.96]:
        s.step(v)
    state = s.state_dict()
    opt2, _ = _pair(groups=(1.0,))
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    s2 = ReduceLROnPlateau(opt2)
    s2.load_state_dict(state)
    for v in [0.97, 0.98, 0.99, 1.0, 1.1]:
        s.step(v)
        s2.step(v)
        assert _lrs(opt) == _lrs(opt2)
    assert s2.patience == 1 and s2.best == 0.9


@pytest.mark.parametrize("make, message", [
    (lambda o: StepLR(o, step_size=0), "step_size"),
    (lambda o: StepLR(o, step_size=2, gamma=float("nan")), "gamma"),
    (lambda o: CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: ReduceLROnPlateau(o, mode="best"), "mode"),
    (lambda o: ReduceLROnPlateau(o, threshold_mode="x"), "threshold_mode"),
    (lambda o: ReduceLROnPlateau(o, min_lr=[0.1, 0.2, 0.3]), "min_lr"),
    (lambda o: ReduceLROnPlateau(o, patience=-1), "patience"),
])
def test_bad_arguments(make, message):
    opt, _ = _pair()
    with pytest.raises(ValueError, match=message):
        make(opt)


def test_not_an_optimizer():
    with pytest.raises(TypeError, match=r"\[StepLR\].*optimizer"):
        StepLR(object(), step_size=1)


def test_resume_without_initial_lr_refused():
    opt, _ = _pair()
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(opt, step_size=2, last_epoch=4)


def test_docstring_examples():
    import hepnn.optim.lr_scheduler as mod

    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0
