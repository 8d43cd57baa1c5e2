#!/usr/bin/env python3
"""Generate boosted top-quark jets and QCD jets with Pythia 8 and FastJet for the jet taggers.

Signal is pp -> t tbar with both W bosons forced to hadrons; background is QCD 2 -> 2
(``HardQCD:all``). Both at 13 TeV with partonic pT-hat in [550, 650] GeV, generator level (no
detector simulation), showers, multiparton interactions and hadronisation on.

Jets: anti-kT R = 0.8 (FastJet) on the visible final-state particles (neutrinos removed), jet pT
in [550, 650] GeV and |eta| < 2. A top jet must contain its top: the top quark (last copy before
decay) and its three decay quarks (b and the W's two quarks) all lie within dR < 0.8 of the jet
axis, so the label is the truth of the jet, not of the event. Background jets are the jets of
QCD events passing the same kinematic cuts (at most the two leading ones per event).

Per jet the constituents are sorted by pT (descending) and kept up to ``--max-constituents``;
each has ``(pT, eta - eta_jet, phi - phi_jet, E)`` (GeV, radians; phi wrapped into [-pi, pi)).
The output ``.npz`` (``np.savez_compressed``) holds ``constituents`` (float32, jets x max x 4,
zero-padded), ``n_constituents`` (int32), ``jet`` (float32, jets x 4: pT, eta, phi, mass),
``label`` (int8: 1 top, 0 QCD), ``feature_names``, ``jet_feature_names`` and ``metadata``
(JSON: seeds, counts, rates, versions).

Example (the committed sample was made with the command in README.md)::

    python examples/data/generate_top_qcd.py --top 200 --qcd 200 --seed 1 --procs 2 \\
        --out /tmp/top_qcd_small.npz

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

FEATURE_NAMES = ("pt", "deta", "dphi", "e")
JET_FEATURE_NAMES = ("pt", "eta", "phi", "mass")

JET_R = 0.8
JET_PT_RANGE = (550.0, 650.0)
JET_ETA_MAX = 2.0
MATCH_DR = 0.8
QCD_JETS_PER_EVENT = 2

COMMON_SETTINGS = [
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    "PhaseSpace:pTHatMin = 550.",
    "PhaseSpace:pTHatMax = 650.",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowProcess = 0",
    "Next:numberShowInfo = 0",
    "Random:setSeed = on",
]

PROCESS_SETTINGS = {
    "top": [
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        # Both W to quarks (antiparticles matched too): every top can give a fully hadronic jet.
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
    ],
    "qcd": ["HardQCD:all = on"],
}


def _import_generators():
    try:
        import pythia8mc
        import fastjet
    except ImportError as exc:  # pragma: no cover - exercised only without the packages
        raise ImportError(
            "generate_top_qcd: needs Pythia 8 and FastJet from PyPI: "
            "pip install pythia8mc==8.317.2 fastjet==3.5.2"
        ) from exc
    return pythia8mc, fastjet


def wrap_phi(dphi):
    """Angle differences wrapped into [-pi, pi).

    Example::

        >>> float(wrap_phi(np.array([3.5]))[0]) == 3.5 - 2 * math.pi
        True
    """
    return (np.asarray(dphi) + math.pi) % (2.0 * math.pi) - math.pi


def delta_r(eta1, phi1, eta2, phi2):
    """Distance in (eta, phi), phi difference wrapped.

    Example::

        >>> round(float(delta_r(0.0, 3.1, 0.0, -3.1)), 4)
        0.0832
    """
    return np.hypot(np.asarray(eta1) - eta2, wrap_phi(np.asarray(phi1) - phi2))


def constituent_features(jet_pt_eta_phi, pt, eta, phi, e, max_constituents):
    """Sorted, truncated, jet-relative constituent features: (n, 4) float32 and the kept count.

    Example::

        >>> f, n = constituent_features((100., 0.5, 3.1), np.array([10., 30.]), np.array([0.4, 0.6]),
        ...                             np.array([3.0, -3.1]), np.array([11., 40.]), 4)
        >>> n, float(f[0, 0]), round(float(f[0, 2]), 4)   # the 30 GeV particle first, dphi wrapped
        (2, 30.0, 0.0832)
    """
    order = np.argsort(-pt, kind="stable")[:max_constituents]
    _, jeta, jphi = jet_pt_eta_phi
    out = np.zeros((max_constituents, 4), dtype=np.float32)
    n = len(order)
    out[:n, 0] = pt[order]
    out[:n, 1] = eta[order] - jeta
    out[:n, 2] = wrap_phi(phi[order] - jphi)
    out[:n, 3] = e[order]
    return out, n


def _top_partons(event):
    """(eta, phi) of each top's decay quarks and of the top itself, for the tops that decay to
    b W -> b q q'; a list of 4 x 2 arrays (top, b, q, q')."""
    tops = []
    # The hard process's outgoing partons sit at entries 5 and 6; follow each top to its last
    # copy instead of scanning the whole record (a Python call per particle is slow).
    for i in sorted({event[k].iBotCopyId() for k in (5, 6) if event[k].idAbs() == 6}):
        p = event[i]
        daughters = [event[j] for j in range(p.daughter1(), p.daughter2() + 1)]
        b = [d for d in daughters if d.idAbs() == 5]
        w = [d for d in daughters if d.idAbs() == 24]
        if len(b) != 1 or len(w) != 1:
            continue
        w_last = event[w[0].iBotCopyId()]
        quarks = [event[j] for j in range(w_last.daughter1(), w_last.daughter2() + 1)]
        quarks = [q for q in quarks if 1 <= q.idAbs() <= 5]
        if len(quarks) != 2:
            continue
        tops.append(np.array([[x.eta(), x.phi()] for x in (p, b[0], quarks[0], quarks[1])]))
    return tops


def _worker(args):
    """Generate jets of one process with one seed until ``n`` are kept; return arrays + info."""
    process, n, seed, max_constituents = args
    pythia8mc, fastjet = _import_generators()
    pythia = pythia8mc.Pythia("", False)
    for s in COMMON_SETTINGS + PROCESS_SETTINGS[process]:
        if not pythia.readString(s):
            raise RuntimeError(f"generate_top_qcd: Pythia refused the setting {s!r}")
    pythia.readString(f"Random:seed = {seed}")
    if not pythia.init():
        raise RuntimeError(f"generate_top_qcd: Pythia init failed for {process} (seed {seed})")
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    event = pythia.event
    consts, counts, jets = [], [], []
    n_events = n_failed = 0
    t0 = time.perf_counter()
    while len(jets) < n:
        if not pythia.next():
            n_failed += 1
            if n_failed > 100 + n:
                raise RuntimeError(f"generate_top_qcd: too many failed events for {process}")
            continue
        n_events += 1
        parts = np.array([(p.px(), p.py(), p.pz(), p.e()) for p in event
                          if p.isFinal() and p.isVisible()], dtype=np.float64)
        pj = [fastjet.PseudoJet(*map(float, row)) for row in parts]
        for k, x in enumerate(pj):
            x.set_user_index(k)
        cs = fastjet.ClusterSequence(pj, jetdef)
        cands = [j for j in fastjet.sorted_by_pt(cs.inclusive_jets(JET_PT_RANGE[0]))
                 if j.pt() <= JET_PT_RANGE[1] and abs(j.eta()) < JET_ETA_MAX]
        if process == "qcd":
            cands = cands[:QCD_JETS_PER_EVENT]
        else:
            tops = _top_partons(event) if cands else []
            cands = [j for j in cands
                     if any((delta_r(t[:, 0], t[:, 1], j.eta(), j.phi_std()) < MATCH_DR).all()
                            for t in tops)]
        for j in cands:
            idx = np.array([c.user_index() for c in j.constituents()], dtype=np.int64)
            c = parts[idx]
            pt = np.hypot(c[:, 0], c[:, 1])
            pabs = np.sqrt(pt * pt + c[:, 2] ** 2)
            eta = np.arctanh(np.clip(c[:, 2] / np.maximum(pabs, 1e-300), -1 + 1e-15, 1 - 1e-15))
            phi = np.arctan2(c[:, 1], c[:, 0])
            f, k = constituent_features((j.pt(), j.eta(), j.phi_std()), pt, eta, phi, c[:, 3],
                                        max_constituents)
            consts.append(f)
            counts.append(k)
            jets.append((j.pt(), j.eta(), j.phi_std(), j.m()))
            if len(jets) == n:
                break
    return {
        "process": process,
        "seed": seed,
        "n_events": n_events,
        "n_failed": n_failed,
        "seconds": time.perf_counter() - t0,
        "constituents": np.stack(consts),
        "n_constituents": np.asarray(counts, dtype=np.int32),
        "jet": np.asarray(jets, dtype=np.float32),
    }


def generate(n_top, n_qcd, seed=1, procs=2, max_constituents=128, verbose=True):
    """Generate ``n_top`` top jets and ``n_qcd`` QCD jets; return the dict of arrays of the npz.

    Worker ``i`` of the top sample uses Pythia seed ``seed * 1000 + i``, of the QCD sample
    ``seed * 1000 + 500 + i``, so runs are reproducible for a given ``procs``.

    Example (needs pythia8mc and fastjet)::

        >>> out = generate(5, 5, seed=3, procs=1, verbose=False)   # doctest: +SKIP
        >>> out["constituents"].shape                                # doctest: +SKIP
        (10, 128, 4)
    """
    if n_top < 1 or n_qcd < 1:
        raise ValueError("generate: --top and --qcd must be at least 1")
    if procs < 1:
        raise ValueError("generate: --procs must be at least 1")
    if not 0 <= seed < 900_000:
        raise ValueError("generate: --seed must be in [0, 900000)")
    if max_constituents < 1:
        raise ValueError("generate: --max-constituents must be at least 1")
    _import_generators()
    tasks = []
    for process, n, offset in (("top", n_top, 0), ("qcd", n_qcd, 500)):
        for i, k in enumerate(split(n, procs)):
            if k > 0:
                tasks.append((process, k, seed * 1000 + offset + i, max_constituents))
    t0 = time.perf_counter()
    if procs == 1:
        results = [_worker(t) for t in tasks]
    else:
        with mp.get_context("spawn").Pool(procs) as pool:
            results = pool.map(_worker, tasks, chunksize=1)
    wall = time.perf_counter() - t0

    out = {"constituents": [], "n_constituents": [], "jet": [], "label": []}
    summary = {}
    for process, label in (("top", 1), ("qcd", 0)):
        res = [r for r in results if r["process"] == process]
        for key in ("constituents", "n_constituents", "jet"):
            out[key].append(np.concatenate([r[key] for r in res]))
        n_jets = sum(len(r["jet"]) for r in res)
        out["label"].append(np.full(n_jets, label, dtype=np.int8))
        cpu = sum(r["seconds"] for r in res)
        n_events = sum(r["n_events"] for r in res)
        counts = out["n_constituents"][-1]
        summary[process] = {
            "n_jets": n_jets,
            "n_events": n_events,
            "jets_per_event": n_jets / n_events,
            "worker_seconds": cpu,
            "jets_per_second_per_process": n_jets / cpu,
            "truncated_jets": int((counts >= max_constituents).sum()),
            "seeds": [r["seed"] for r in res],
        }
        if verbose:
            s = summary[process]
            print(f"{process:4s}: {n_jets} jets from {n_events} events "
                  f"({s['jets_per_event']:.2f} per event), {s['jets_per_second_per_process']:.1f} "
                  f"jets/s per process, mean constituents {counts.mean():.1f}")
    summary.update(wall_seconds=wall, procs=procs, seed=seed, max_constituents=max_constituents,
                   jet_r=JET_R, jet_pt_range=list(JET_PT_RANGE), jet_eta_max=JET_ETA_MAX,
                   versions={"pythia8mc": version("pythia8mc"), "fastjet": version("fastjet"),
                             "numpy": np.__version__})
    if verbose:
        total = summary["top"]["n_jets"] + summary["qcd"]["n_jets"]
        print(f"total: {total} jets in {wall:.1f} s wall with {procs} processes")
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    arrays["feature_names"] = np.array(FEATURE_NAMES)
    arrays["jet_feature_names"] = np.array(JET_FEATURE_NAMES)
    arrays["metadata"] = np.array(json.dumps(summary, sort_keys=True))
    return arrays


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=1000, help="top jets to keep")
    parser.add_argument("--qcd", type=int, default=1000, help="QCD jets to keep")
    parser.add_argument("--seed", type=int, default=1, help="base seed (0 <= seed < 900000)")
    parser.add_argument("--procs", type=int, default=2, help="generator processes")
    parser.add_argument("--max-constituents", type=int, default=128,
                        help="constituents kept per jet (highest pT first)")
    parser.add_argument("--out", default="top_qcd_sample.npz", help="output .npz path")
    args = parser.parse_args(argv)
    out = generate(args.top, args.qcd, seed=args.seed, procs=args.procs,
                   max_constituents=args.max_constituents)
    write_npz(args.out, out)
    print(f"wrote {args.out}: {len(out['label'])} jets, {os.path.getsize(args.out)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
