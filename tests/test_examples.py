"""The examples run end to end in a reduced mode and reach what they claim."""
import importlib
import os
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES)

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_train_mlp_learns(example, capsys):
    accuracy = example("train_mlp").main(epochs=2)
    assert accuracy > 0.8
    out = capsys.readouterr().out
    assert "epoch  2" in out and "test accuracy" in out


def test_fit_line_agrees_with_closed_form(example):
    (slope, intercept), (w, b) = example("fit_line").main(steps=300)
    assert abs(slope - w) < 1e-3 and abs(intercept - b) < 1e-3
