"""PyTorch twins of the graph layers for the cross-checks and the benchmark: kNN by a stable sort
(ties to the smaller index, like hepnn), EdgeConv in the naive form (gather every neighbour, MLP on
the B x N x k x 2C edge tensor) and the factorised form, and DeepSets with masked pooling.
State-dict keys equal hepnn's, so weights move in one line."""
import torch


def knn(coords, k, mask):
    """(B, N, k) int64 nearest valid neighbours, -1 where there are none (hepnn's convention)."""
    B, N, _ = coords.shape
    d = ((coords[:, :, None, :] - coords[:, None, :, :]) ** 2).sum(-1)
    bad = ~mask[:, None, :] | torch.eye(N, dtype=torch.bool)[None]
    d = d.masked_fill(bad, float("inf"))
    order = torch.sort(d, dim=-1, stable=True)
    kk = min(k, N)
    idx = order.indices[:, :, :kk]
    idx = idx.masked_fill(torch.isinf(order.values[:, :, :kk]) | ~mask[:, :, None], -1)
    if kk < k:
        idx = torch.cat([idx, torch.full((B, N, k - kk), -1, dtype=idx.dtype)], dim=-1)
    return idx


def _aggregate(h, valid, aggregation):
    count = valid.sum(dim=2, keepdim=False).unsqueeze(-1)
    if aggregation == "mean":
        return (h * valid[..., None]).sum(dim=2) / count.clamp(min=1)
    out = h.masked_fill(~valid[..., None], float("-inf")).max(dim=2).values
    return torch.where(count > 0, out, torch.zeros_like(out))


class EdgeConv(torch.nn.Module):
    """Same parameters as hepnn.nn.EdgeConv; forward takes the kNN indices."""

    def __init__(self, in_features, widths, aggregation="mean", shortcut=False, factorised=False):
        super().__init__()
        fins = [2 * in_features] + list(widths[:-1])
        self.mlp = torch.nn.ModuleList([torch.nn.Linear(a, b) for a, b in zip(fins, widths)])
        self.shortcut = torch.nn.Linear(in_features, widths[-1]) if shortcut else None
        self.aggregation, self.factorised, self.C = aggregation, factorised, in_features

    def forward(self, x, mask, idx):
        x = torch.where(mask[..., None], x, torch.zeros_like(x))
        B, N, C = x.shape
        valid = idx >= 0
        safe = idx.clamp(min=0)
        batch = torch.arange(B)[:, None, None]
        if self.factorised:  # W_0 [x_i, x_j - x_i] = (W_a - W_b) x_i + W_b x_j: two per-point GEMMs
            w0, b0 = self.mlp[0].weight, self.mlp[0].bias
            wa, wb = w0[:, :C], w0[:, C:]
            p = x @ (wa - wb).T + b0
            q = x @ wb.T
            h = torch.relu(p[:, :, None, :] + q[batch, safe])
        else:
            xj = x[batch, safe]
            xi = x[:, :, None, :].expand_as(xj)
            h = torch.relu(self.mlp[0](torch.cat([xi, xj - xi], dim=-1)))
        for layer in self.mlp[1:]:
            h = torch.relu(layer(h))
        y = _aggregate(h, valid, self.aggregation)
        if self.shortcut is not None:
            y = torch.relu(y + self.shortcut(x))
        return torch.where(mask[..., None], y, torch.zeros_like(y))


class DeepSets(torch.nn.Module):
    def __init__(self, phi, rho, pooling="sum"):
        super().__init__()
        self.phi, self.rho, self.pooling = phi, rho, pooling

    def forward(self, x, mask):
        m = mask[..., None]
        h = self.phi(torch.where(m, x, torch.zeros_like(x)))
        if self.pooling == "sum":
            pooled = (h * m).sum(1)
        elif self.pooling == "mean":
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            pooled = h.masked_fill(~m, float("-inf")).max(1).values
            pooled = torch.where(m.sum(1) > 0, pooled, torch.zeros_like(pooled))
        return self.rho(pooled)
