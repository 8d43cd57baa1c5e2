"""Signal/background classification with an MLP: the first thing the HEP ML lectures train.
Generates a toy H -> WW sample, standardises it on the training part, trains with Adam and
BCE-with-logits, prints the loss per epoch and the test accuracy. Runs in well under a minute."""
import time

import numpy as np

import hepnn
from hepnn import nn

from hww_toy import FEATURES, make_events


def main(epochs: int = 10, batch_size: int = 256, seed: int = 1):
    hepnn.manual_seed(seed)
    X, y = make_events(60_000, seed=seed)
    n_train = 50_000
    mean, std = X[:n_train].mean(axis=0), X[:n_train].std(axis=0)
    X = (X - mean) / std
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]

    model = nn.Sequential(
        nn.Linear(len(FEATURES), 64, init="he_uniform"), nn.ReLU(),
        nn.Linear(64, 64, init="he_uniform"), nn.ReLU(),
        nn.Linear(64, 1),
    )
    loss_fn = nn.BCEWithLogitsLoss()
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)

    for epoch in range(1, epochs + 1):
        start, total, seen = time.perf_counter(), 0.0, 0
        order = rng.permutation(n_train)
        model.train()
        for i in range(0, n_train - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            xb, yb = hepnn.tensor(X_train[idx]), hepnn.tensor(y_train[idx, None])
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        rate = seen / (time.perf_counter() - start)
        print(f"epoch {epoch:2d}  train loss {total / seen:.4f}  ({rate:,.0f} events/s)")

    model.eval()
    with hepnn.no_grad():
        logits = model(hepnn.tensor(X_test)).numpy().ravel()
    accuracy = np.mean((logits > 0) == (y_test == 1))
    print(f"test accuracy {accuracy:.4f} on {len(y_test)} events")
    return accuracy


if __name__ == "__main__":
    main()
