"""Learning-rate schedules with torch.optim.lr_scheduler's names, arguments and values: StepLR,
CosineAnnealingLR and ReduceLROnPlateau. Each writes optimizer.param_groups[i]["lr"]; call
step() once per epoch, after the epoch's optimizer steps (ReduceLROnPlateau: step(val_loss)).
"""
from __future__ import annotations

import math

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


def _check_optimizer(name, optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not groups or not all("lr" in g for g in groups):
        raise TypeError(f"[{name}] expected an optimizer with param_groups holding 'lr', "
                        f"got {type(optimizer).__name__}")


def _finite(name, what, value, minimum=None, strict=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"[{name}] {what} must be a number, got {value!r}") from None
    bad = not math.isfinite(v) or (minimum is not None and (v <= minimum if strict else v < minimum))
    if bad:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum}"
        raise ValueError(f"[{name}] {what} must be a finite number{bound}, got {value!r}")
    return v


class _SchedulerState:
    """What every scheduler shares: the last learning rates and a state dict without the optimizer."""

    def get_last_lr(self) -> list:
        """The learning rates set by the last step(), one per param group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer, as plain Python values (JSON-serialisable)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
                if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from state_dict()."""
        self.__dict__.update({k: v for k, v in state.items() if k != "optimizer"})


class LRScheduler(_SchedulerState):
    """Base of the epoch-indexed schedules: remembers each group's starting lr as
    ``group["initial_lr"]`` (as torch does), counts epochs in ``last_epoch`` and sets the lr of
    epoch 0 on construction. Subclasses define ``_next_lrs()``.

    Example:
        >>> import hepnn
        >>> from hepnn.optim.lr_scheduler import StepLR
        >>> opt = hepnn.optim.SGD(hepnn.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> sched = StepLR(opt, step_size=2)
        >>> sched.last_epoch, sched.get_last_lr()
        (0, [0.1])
    """

    def __init__(self, optimizer, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        else:
            for i, g in enumerate(optimizer.param_groups):
                if "initial_lr" not in g:
                    raise KeyError(f"[{name}] param_groups[{i}] has no 'initial_lr': resuming with "
                                   "last_epoch >= 0 needs the optimizer state of the run being resumed")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._step_count = 0
        self.step()

    def _next_lrs(self) -> list:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new learning rates into the optimizer."""
        self._step_count += 1
        self.last_epoch += 1
        lrs = self._next_lrs()
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]



class StepLR(LRScheduler):
    """Multiplies the lr by ``gamma`` every ``step_size`` epochs.

    Example:
        >>> import hepnn
        >>> from hepnn.optim.lr_scheduler import StepLR
        >>> opt = hepnn.optim.SGD(hepnn.nn.Linear(2, 1).parameters(), lr=1.0)
        >>> sched = StepLR(opt, step_size=2, gamma=0.5)
        >>> [(sched.step(), opt.param_groups[0]["lr"])[1] for _ in range(4)]
        [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"[StepLR] step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = _finite("StepLR", "gamma", gamma, 0.0)
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self):
        groups = self.optimizer.param_groups
        # NOTE: multiplied into the current lr (not base * gamma**k) so values match torch's
        # chained updates bit for bit and compose with other changes to the lr.
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [g["lr"] for g in groups]
        return [g["lr"] * self.gamma for g in groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from the initial lr to ``eta_min`` over ``T_max`` epochs (then back up, a
    cosine wave of period 2*T_max, as in torch):
    lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2.

    Example:
        >>> import hepnn
        >>> from hepnn.optim.lr_scheduler import CosineAnnealingLR
        >>> opt = hepnn.optim.SGD(hepnn.nn.Linear(2, 1).parameters(), lr=1.0)
        >>> sched = CosineAnnealingLR(opt, T_max=2)
        >>> [round((sched.step(), opt.param_groups[0]["lr"])[1], 6) for _ in range(2)]
        [0.5, 0.0]
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"[CosineAnnealingLR] T_max must be a positive integer, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = _finite("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self):
        groups, t, T, lo = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if t == 0 and self._step_count == 1:
            return [g["lr"] for g in groups]
        if self._step_count == 1 and t > 0:  # resumed: closed form
            return [lo + (b - lo) * (1 + math.cos(t * math.pi / T)) / 2 for b in self.base_lrs]
        # NOTE: updated from the current lr, as torch does, so the values agree exactly; the
        # ratio form divides by zero at the trough (t - 1 an odd multiple of T_max), where the
        # rising half-step is added instead.
        if (t - 1 - T) % (2 * T) == 0:
            return [g["lr"] + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                    for b, g in zip(self.base_lrs, groups)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (g["lr"] - lo) + lo for g in groups]


class ReduceLROnPlateau(_SchedulerState):
    """Multiplies the lr by ``factor`` when the monitored value (usually the validation loss,
    passed to ``step(value)``) has not improved for more than ``patience`` epochs.

    Improvement in mode "min": value < best * (1 - threshold) ("rel") or value < best -
    threshold ("abs"); "max" mirrors it. After a reduction, ``cooldown`` epochs pass before bad
    epochs count again. The lr never goes below ``min_lr`` (a number or one per group); a change
    smaller than ``eps`` is skipped. hepnn.fit steps it with the validation loss.

    Example:
        >>> import hepnn
        >>> from hepnn.optim.lr_scheduler import ReduceLROnPlateau
        >>> opt = hepnn.optim.SGD(hepnn.nn.Linear(2, 1).parameters(), lr=1.0)
        >>> sched = ReduceLROnPlateau(opt, patience=1, factor=0.5)
        >>> for loss in [1.0, 1.0, 1.0]:
        ...     sched.step(loss)
        >>> opt.param_groups[0]["lr"]
        0.5
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr=0.0, eps: float = 1e-8):
        name = "ReduceLROnPlateau"
        _check_optimizer(name, optimizer)
        factor = _finite(name, "factor", factor, 0.0)
        if factor >= 1.0:
            raise ValueError(f"[{name}] factor must be < 1.0, got {factor!r}")
        for what, v in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"[{name}] {what} must be a non-negative integer, got {v!r}")
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"[{name}] expected {len(optimizer.param_groups)} min_lr values "
                                 f"(one per param group), got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = [_finite(name, "min_lr", m, 0.0) for m in min_lr]
        else:
            self.default_min_lr = _finite(name, "min_lr", min_lr, 0.0)
            self.min_lrs = [self.default_min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = _finite(name, "eps", eps, 0.0)
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]
        self._set_mode(mode, _finite(name, "threshold", threshold, 0.0), threshold_mode)
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _set_mode(self, mode, threshold, threshold_mode):
        if mode not in ("min", "max"):
            raise ValueError(f"[ReduceLROnPlateau] mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"[ReduceLROnPlateau] threshold_mode must be 'rel' or 'abs', "
                             f"got {threshold_mode!r}")
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf

    def is_better(self, value: float, best: float) -> bool:
        """Whether `value` improves on `best` by more than the threshold."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return value < best * (1.0 - self.threshold)
            return value < best - self.threshold
        if self.threshold_mode == "rel":
            return value > best * (1.0 + self.threshold)
        return value > best + self.threshold

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics) -> None:
        """Record one epoch's monitored value (a number or a one-element tensor)."""
        value = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch += 1
        if self.is_better(value, self.best):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _reduce(self):
        groups = self.optimizer.param_groups
        if len(self.min_lrs) != len(groups):
            if self.default_min_lr is None:
                raise RuntimeError(f"[ReduceLROnPlateau] the optimizer now has {len(groups)} param "
                                   f"groups but min_lr was given for {len(self.min_lrs)}")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for g, lo in zip(groups, self.min_lrs):
            old = float(g["lr"])
            new = max(old * self.factor, lo)
            if old - new > self.eps:
                g["lr"] = new

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from state_dict()."""
        super().load_state_dict(state)
        self._set_mode(self.mode, self.threshold, self.threshold_mode)
