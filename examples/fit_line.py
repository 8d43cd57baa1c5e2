"""Fitting a straight line with autograd and gradient descent, beside the closed-form answer: the
ML-intro lecture's first demo. Prints both fits; they agree to a few parts in 10^4."""
import numpy as np

import hepnn


def main(steps: int = 500, lr: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, 200)
    y = 1.7 * x - 0.4 + rng.normal(0, 0.2, x.size)

    X, Y = hepnn.tensor(x), hepnn.tensor(y)
    slope = hepnn.tensor(0.0, requires_grad=True)
    intercept = hepnn.tensor(0.0, requires_grad=True)
    opt = hepnn.optim.SGD([slope, intercept], lr=lr)
    for step in range(steps):
        residual = slope * X + intercept - Y
        loss = (residual * residual).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step:4d}  loss {loss.item():.5f}  slope {slope.item():+.4f}  intercept {intercept.item():+.4f}")

    w, b = hepnn.linear_regression(x[:, None], y)
    print(f"gradient descent: slope {slope.item():+.5f}  intercept {intercept.item():+.5f}")
    print(f"closed form:      slope {w[0]:+.5f}  intercept {b:+.5f}")
    return (slope.item(), intercept.item()), (w[0], b)


if __name__ == "__main__":
    main()
