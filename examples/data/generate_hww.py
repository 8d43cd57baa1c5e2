#!/usr/bin/env python3
"""Generate the H -> WW -> l nu l nu sample of the main job with Pythia 8 and FastJet.

Signal is gg -> H (m_H = 125 GeV) with H -> W+ W-; background is continuum
q qbar -> W+ W-. In both, each W is forced to decay to e nu or mu nu, so no
event is wasted; Pythia's ``sigmaGen()`` already contains the branching
ratios of the forced (open) channels, so ``weight = sigmaGen * 1e12 / N_generated``
is a cross-section weight in fb (``1 mb = 1e12 fb``) and the weights of the kept
events sum to sigma x BR x preselection efficiency. Proton-proton at 13 TeV,
generator level (no detector simulation); showers, multiparton interactions and
hadronisation are on.

Per event, from the final-state particles:

- isolated leptons: e/mu with pT > 10 GeV, |eta| < 2.5, scalar sum pT of the
  other visible final-state particles within dR < 0.3 below 0.15 x pT;
- MET: the vector sum of the invisible particles' pT (neutrinos);
- jets: anti-kT R = 0.4 (FastJet) on the visible final-state particles without
  the isolated leptons, pT > 25 GeV, |eta| < 4.5;
- ``mt``: the ATLAS/CMS H -> WW transverse mass,
  ``mt^2 = (E_T^ll + MET)^2 - |pT^ll + MET|^2`` with ``E_T^ll = sqrt(pT_ll^2 + m_ll^2)``.

Events with at least two isolated leptons are kept. The output is an ``.npz``
(``np.savez_compressed``) with ``X`` (float32, events x features), ``weight``
(float64, fb), ``label`` (int8: 1 signal, 0 background), ``feature_names`` and
the run's metadata (cross sections, generated counts, seeds, versions).

Example (the committed sample was made with the command in README.md)::

    python examples/data/generate_hww.py --signal 200 --background 200 \\
        --seed 1 --procs 2 --out /tmp/hww_small.npz

Needs ``pip install pythia8mc==8.317.2 fastjet==3.5.2``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _npz_io import split, version, write_npz  # noqa: E402

FEATURE_NAMES = (
    "n_leptons",
    "lep1_pt",
    "lep1_eta",
    "lep2_pt",
    "lep2_eta",
    "m_ll",
    "pt_ll",
    "dphi_ll",
    "dr_ll",
    "met",
    "mt",
    "n_jets",
)

LEPTON_PT_MIN = 10.0
LEPTON_ETA_MAX = 2.5
ISO_DR = 0.3
ISO_FRACTION = 0.15
JET_R = 0.4
JET_PT_MIN = 25.0
JET_ETA_MAX = 4.5

MB_TO_FB = 1.0e12

PROCESS_SETTINGS = {
    "signal": [
        "HiggsSM:gg2H = on",
        "25:m0 = 125.0",
        "25:onMode = off",
        "25:onIfMatch = 24 -24",
    ],
    "background": [
        "WeakDoubleBoson:ffbar2WW = on",
    ],
}

COMMON_SETTINGS = [
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    # Both W decay to e nu or mu nu only (antiparticles matched too).
    "24:onMode = off",
    "24:onIfAny = 11 13",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowProcess = 0",
    "Next:numberShowInfo = 0",
    "Random:setSeed = on",
]


def _import_generators():
    try:
        import pythia8mc
        import fastjet
    except ImportError as exc:  # pragma: no cover - exercised only without the packages
        raise ImportError(
            "generate_hww: needs Pythia 8 and FastJet from PyPI: "
            "pip install pythia8mc==8.317.2 fastjet==3.5.2"
        ) from exc
    return pythia8mc, fastjet


def _dphi(a, b):
    d = np.abs(a - b) % (2.0 * math.pi)
    return np.where(d > math.pi, 2.0 * math.pi - d, d)


def event_features(ids, px, py, pz, e, visible, fastjet, jetdef):
    """Return the feature row of one event, or None if it has fewer than two isolated leptons.

    The inputs are arrays over the event's final-state particles: PDG id, four-momentum
    (GeV) and whether the particle is visible (not a neutrino).

    Example::

        >>> import numpy as np
        >>> ids = np.array([11, -13, 12, -14]); v = np.array([True, True, False, False])
        >>> px = np.array([40., -30., 5., 5.]); py = np.array([0., 10., 20., 0.])
        >>> pz = np.array([10., -5., 3., 1.]); e = np.sqrt(px**2 + py**2 + pz**2)
        >>> row = event_features(ids, px, py, pz, e, v, None, None)
        >>> int(row[0]), round(float(row[9]), 1)   # n_leptons, met
        (2, 22.4)
    """
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        pabs = np.sqrt(px * px + py * py + pz * pz)
        eta = np.arctanh(np.where(pabs > 0, pz / np.maximum(pabs, 1e-300), 0.0))
    eta = np.nan_to_num(eta, nan=0.0, posinf=20.0, neginf=-20.0)
    eta = np.clip(eta, -20.0, 20.0)
    phi = np.arctan2(py, px)

    aid = np.abs(ids)
    cand = np.flatnonzero(
        ((aid == 11) | (aid == 13)) & (pt > LEPTON_PT_MIN) & (np.abs(eta) < LEPTON_ETA_MAX)
    )
    vis_idx = np.flatnonzero(visible)
    leptons = []
    for i in cand:
        others = vis_idx[vis_idx != i]
        dr2 = (eta[others] - eta[i]) ** 2 + _dphi(phi[others], phi[i]) ** 2
        iso = pt[others][dr2 < ISO_DR * ISO_DR].sum()
        if iso < ISO_FRACTION * pt[i]:
            leptons.append(i)
    if len(leptons) < 2:
        return None
    leptons = sorted(leptons, key=lambda i: -pt[i])
    a, b = leptons[0], leptons[1]

    lx, ly, lz, le = px[a] + px[b], py[a] + py[b], pz[a] + pz[b], e[a] + e[b]
    m2 = le * le - lx * lx - ly * ly - lz * lz
    m_ll = math.sqrt(max(m2, 0.0))
    pt_ll = math.hypot(lx, ly)
    dphi = float(_dphi(phi[a], phi[b]))
    dr = math.sqrt((eta[a] - eta[b]) ** 2 + dphi * dphi)

    inv = ~visible
    mex, mey = px[inv].sum(), py[inv].sum()
    met = math.hypot(mex, mey)
    et_ll = math.sqrt(pt_ll * pt_ll + m_ll * m_ll)
    mt2 = (et_ll + met) ** 2 - ((lx + mex) ** 2 + (ly + mey) ** 2)
    mt = math.sqrt(max(mt2, 0.0))

    n_jets = 0
    if fastjet is not None:
        keep = visible.copy()
        keep[leptons] = False
        inputs = [
            fastjet.PseudoJet(float(px[k]), float(py[k]), float(pz[k]), float(e[k]))
            for k in np.flatnonzero(keep)
        ]
        cs = fastjet.ClusterSequence(inputs, jetdef)
        for jet in cs.inclusive_jets(JET_PT_MIN):
            if abs(jet.eta()) < JET_ETA_MAX:
                n_jets += 1

    return (
        float(len(leptons)),
        float(pt[a]),
        float(eta[a]),
        float(pt[b]),
        float(eta[b]),
        m_ll,
        pt_ll,
        dphi,
        dr,
        met,
        mt,
        float(n_jets),
    )


def _worker(args):
    """Generate ``n`` events of one process with one seed; return features and run info."""
    process, n, seed, mpi = args
    pythia8mc, fastjet = _import_generators()
    pythia = pythia8mc.Pythia("", False)
    for s in COMMON_SETTINGS + PROCESS_SETTINGS[process]:
        if not pythia.readString(s):
            raise RuntimeError(f"generate_hww: Pythia refused the setting {s!r}")
    pythia.readString(f"Random:seed = {seed}")
    pythia.readString(f"PartonLevel:MPI = {'on' if mpi else 'off'}")
    if not pythia.init():
        raise RuntimeError(f"generate_hww: Pythia init failed for {process} (seed {seed})")
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    event = pythia.event
    rows = []
    n_done = 0
    n_failed = 0
    t0 = time.perf_counter()
    while n_done < n:
        if not pythia.next():
            n_failed += 1
            if n_failed > 100 + n // 10:
                raise RuntimeError(f"generate_hww: too many failed events for {process}")
            continue
        n_done += 1
        parts = [
            (p.id(), p.px(), p.py(), p.pz(), p.e(), p.isVisible()) for p in event if p.isFinal()
        ]
        arr = np.array(parts, dtype=np.float64)
        row = event_features(
            arr[:, 0].astype(np.int64),
            arr[:, 1],
            arr[:, 2],
            arr[:, 3],
            arr[:, 4],
            arr[:, 5].astype(bool),
            fastjet,
            jetdef,
        )
        if row is not None:
            rows.append(row)
    elapsed = time.perf_counter() - t0
    info = pythia.infoPython()
    return {
        "process": process,
        "seed": seed,
        "n_generated": n_done,
        "n_failed": n_failed,
        "sigma_mb": info.sigmaGen(),
        "sigma_err_mb": info.sigmaErr(),
        "seconds": elapsed,
        "rows": np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)),
    }


def generate(n_signal, n_background, seed=1, procs=2, mpi=True, verbose=True):
    """Generate signal and background events; return the dict of arrays written to the npz.

    Worker ``i`` of the signal uses Pythia seed ``seed * 1000 + i``, of the background
    ``seed * 1000 + 500 + i``, so runs are reproducible for a given ``--procs``.

    Example (needs pythia8mc and fastjet)::

        >>> out = generate(10, 10, seed=3, procs=1, verbose=False)  # doctest: +SKIP
        >>> out["X"].shape[1] == len(out["feature_names"])           # doctest: +SKIP
        True
    """
    if n_signal < 1 or n_background < 1:
        raise ValueError("generate: --signal and --background must be at least 1")
    if procs < 1:
        raise ValueError("generate: --procs must be at least 1")
    if not 0 <= seed < 900_000:
        raise ValueError("generate: --seed must be in [0, 900000)")
    pythia8mc, fastjet = _import_generators()
    tasks = []
    for process, n, offset in (("signal", n_signal, 0), ("background", n_background, 500)):
        for i, k in enumerate(split(n, procs)):
            if k > 0:
                tasks.append((process, k, seed * 1000 + offset + i, mpi))
    t0 = time.perf_counter()
    if procs == 1:
        results = [_worker(t) for t in tasks]
    else:
        with mp.get_context("spawn").Pool(procs) as pool:
            results = pool.map(_worker, tasks, chunksize=1)
    wall = time.perf_counter() - t0

    X, w, y = [], [], []
    summary = {}
    for process, label in (("signal", 1), ("background", 0)):
        res = [r for r in results if r["process"] == process]
        n_gen = sum(r["n_generated"] for r in res)
        # Each worker estimates sigma independently; combine them weighted by events.
        sigma = sum(r["sigma_mb"] * r["n_generated"] for r in res) / n_gen
        err = math.sqrt(sum((r["sigma_err_mb"] * r["n_generated"]) ** 2 for r in res)) / n_gen
        rows = np.concatenate([r["rows"] for r in res])
        X.append(rows)
        w.append(np.full(len(rows), sigma * MB_TO_FB / n_gen))
        y.append(np.full(len(rows), label, dtype=np.int8))
        cpu = sum(r["seconds"] for r in res)
        summary[process] = {
            "sigma_fb": sigma * MB_TO_FB,
            "sigma_err_fb": err * MB_TO_FB,
            "n_generated": n_gen,
            "n_selected": len(rows),
            "efficiency": len(rows) / n_gen,
            "worker_seconds": cpu,
            "events_per_second_per_process": n_gen / cpu,
            "seeds": [r["seed"] for r in res],
        }
        if verbose:
            s = summary[process]
            print(
                f"{process:10s}: sigma x BR = {s['sigma_fb']:.2f} +- {s['sigma_err_fb']:.2f} fb, "
                f"generated {n_gen}, kept {len(rows)} (eff {s['efficiency']:.3f}), "
                f"{s['events_per_second_per_process']:.1f} events/s per process"
            )
    n_total = sum(summary[p]["n_generated"] for p in summary)
    summary["wall_seconds"] = wall
    summary["events_per_second"] = n_total / wall
    summary["procs"] = procs
    summary["seed"] = seed
    summary["mpi"] = bool(mpi)
    summary["versions"] = {
        "pythia8mc": version("pythia8mc"),
        "fastjet": version("fastjet"),
        "numpy": np.__version__,
    }
    if verbose:
        print(f"total: {n_total} events in {wall:.1f} s wall = {n_total / wall:.1f} events/s "
              f"with {procs} processes")
    return {
        "X": np.concatenate(X).astype(np.float32),
        "weight": np.concatenate(w).astype(np.float64),
        "label": np.concatenate(y).astype(np.int8),
        "feature_names": np.array(FEATURE_NAMES),
        "metadata": np.array(json.dumps(summary, sort_keys=True)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signal", type=int, default=1000, help="signal events to generate")
    parser.add_argument("--background", type=int, default=1000,
                        help="background events to generate")
    parser.add_argument("--seed", type=int, default=1, help="base seed (0 <= seed < 900000)")
    parser.add_argument("--procs", type=int, default=2, help="generator processes")
    parser.add_argument("--no-mpi", action="store_true",
                        help="switch off multiparton interactions (faster, less realistic)")
    parser.add_argument("--out", default="hww_sample.npz", help="output .npz path")
    args = parser.parse_args(argv)
    out = generate(args.signal, args.background, seed=args.seed, procs=args.procs,
                   mpi=not args.no_mpi)
    write_npz(args.out, out)
    print(f"wrote {args.out}: {len(out['label'])} events, {os.path.getsize(args.out)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
