"""GEMM speed: hepnn._core.gemm against NumPy's BLAS (OpenBLAS in the wheels) on square sizes and
the MLP shapes that dominate training (batch 256), with 1 and 2 threads; prints a markdown table of
median GFLOP/s, the hepnn/NumPy ratio and hepnn's share of the machine's fp32 FMA peak.

    PYTHONPATH=python python bench/bench_gemm.py [--dtype float32] [--threads 1,2] [--quick]

Peak = threads x clock (from /proc/cpuinfo) x FLOP/cycle of the kernel in use: 64 fp32 with the
AVX-512 kernels (2 FMA pipes x 16 lanes x 2, Sapphire Rapids/Skylake-SP Xeons with two 512-bit FMA
units), 32 with AVX2 (2 x 8 x 2); halve it for float64. HEPNN_DISABLE_AVX512=1 times the AVX2 kernel. Under a hypervisor /proc/cpuinfo
shows the nominal clock, so boost can put a result above 100%. Shapes are M x K x N. With
threadpoolctl (and no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set) the one-thread timings alternate
the two libraries in one process so that both see the same background load; otherwise, and for
several threads (OpenBLAS's idle workers busy-wait and would take hepnn's cores), each library
runs in a fresh subprocess with OPENBLAS_NUM_THREADS set and those variables removed.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import hepnn._core as core  # noqa: E402  (the Python Tensor layer is not needed here)

SQUARE = [256, 512, 1024, 2048]
MLP = [(256, 30, 128), (256, 128, 128), (256, 512, 512), (64, 128, 128)]
# OpenBLAS reads these at load time; some machines set them to values that slow it down.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

SIDE = r"""
import json, sys, time
import numpy as np
shapes, dtype, budget, lib, threads = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[5], int(sys.argv[6])
sys.path.insert(0, sys.argv[4])
from bench_gemm import core, median_seconds
core.set_num_threads(threads)
rng = np.random.default_rng(0)
out = []
for M, K, N in shapes:
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = np.empty((M, N), dtype)
    fn = (lambda: np.matmul(a, b, out=c)) if lib == "numpy" else (lambda: core.gemm(a, b, c))
    out.append(median_seconds(fn, 2.0 * M * N * K, budget))
print(json.dumps(out))
"""


def median_seconds(fn, flops, budget):
    """Median time of one call, repeating for about `budget` seconds (at least 5 timings);
    tiny calls are timed in batches so the timer's resolution does not matter."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(2e-4 / once))
    reps = max(5, min(2000, int(budget / (once * inner))))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return float(np.median(times))


def cpu_info():
    model, mhz = "unknown CPU", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("cpu MHz"):
                    mhz.append(float(line.split(":", 1)[1]))
    except OSError:
        pass
    return model, (max(mhz) / 1000.0 if mhz else None)


def _operands(M, K, N, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    return a, b, np.empty((M, N), dtype), np.empty((M, N), dtype)


def interleaved_times(shapes, dtype, threads, budget, threadpool_limits):
    """hepnn and NumPy timed in alternation in this process, so both see the same background
    load; medians over the rounds."""
    core.set_num_threads(threads)
    res = []
    with threadpool_limits(limits=threads, user_api="blas"):
        for M, K, N in shapes:
            a, b, c1, c2 = _operands(M, K, N, dtype)
            fh, fn = (lambda: core.gemm(a, b, c1)), (lambda: np.matmul(a, b, out=c2))
            fh(), fn()
            t0 = time.perf_counter()
            fh()
            once = max(time.perf_counter() - t0, 1e-7)
            inner = max(1, int(2e-4 / once))
            rounds = max(5, min(1000, int(budget / (2 * once * inner))))
            th, tn, ch, cn = [], [], [], []
            for _ in range(rounds):
                for f, acc, cpu in ((fh, th, ch), (fn, tn, cn)):
                    c0, t0 = time.thread_time(), time.perf_counter()
                    for _ in range(inner):
                        f()
                    acc.append((time.perf_counter() - t0) / inner)
                    cpu.append((time.thread_time() - c0) / inner)
            # This thread's CPU time is the whole cost only when one thread does the work.
            cpu_ratio = float(np.sum(cn) / np.sum(ch)) if threads == 1 and np.sum(ch) > 0 else None
            res.append((float(np.median(th)), float(np.median(tn)), cpu_ratio))
    return res


def subprocess_times(lib, shapes, dtype, threads, budget):
    """One library's timings in a fresh process: OPENBLAS_NUM_THREADS set (1 for the hepnn side, so
    that no OpenBLAS worker busy-waits on the cores hepnn uses) and the OpenBLAS variables of this
    environment dropped."""
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    blas_threads = str(threads if lib == "numpy" else 1)
    env.update(OPENBLAS_NUM_THREADS=blas_threads, OMP_NUM_THREADS=blas_threads)
    run = subprocess.run(
        [sys.executable, "-c", SIDE, json.dumps(shapes), np.dtype(dtype).name, str(budget),
         os.path.dirname(os.path.abspath(__file__)), lib, str(threads)],
        env=env, capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def timings(shapes, dtype, threads, budget):
    """[(hepnn seconds, NumPy seconds, NumPy/hepnn CPU-time ratio or None)] per shape,
    interleaved in-process when possible: one thread only, since OpenBLAS's idle worker threads
    busy-wait after each call and would take the second core from hepnn's timed calls."""
    if threads == 1 and not any(v in os.environ for v in OPENBLAS_OVERRIDES):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            threadpool_limits = None
        if threadpool_limits is not None:
            return interleaved_times(shapes, dtype, threads, budget, threadpool_limits)
    return [(h, n, None) for h, n in zip(subprocess_times("hepnn", shapes, dtype, threads, budget),
                                         subprocess_times("numpy", shapes, dtype, threads, budget))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="shorter timings, no n = 2048")
    args = ap.parse_args()

    dtype = np.dtype(args.dtype).type
    budget = 0.3 if args.quick else 1.2
    shapes = [(n, n, n) for n in SQUARE if not (args.quick and n > 1024)] + MLP
    model, ghz = cpu_info()
    avx512 = core.cpu_features().get("avx512_kernels", False)
    flop_per_cycle = (64 if avx512 else 32) // (1 if dtype == np.float32 else 2)
    default_threads = core.get_num_threads()
    print(f"# hepnn GEMM ({args.dtype}) vs NumPy {np.__version__}")
    print(f"CPU: {model}, {os.cpu_count()} logical CPUs, clock {ghz or float('nan'):.2f} GHz (/proc/cpuinfo); "
          f"AVX2 kernels: {core.cpu_features()['avx2_kernels']}; AVX-512 kernels: {avx512} "
          f"(peak {flop_per_cycle} FLOP/cycle/core); load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| shape M x K x N | threads | hepnn GFLOP/s | NumPy GFLOP/s | hepnn / NumPy | "
          "same, by CPU time | hepnn % of peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    try:
        for threads in [int(t) for t in args.threads.split(",")]:
            peak = threads * ghz * flop_per_cycle if ghz else None
            for (M, K, N), (th, tn, cpu_ratio) in zip(shapes, timings(shapes, dtype, threads, budget)):
                flops = 2.0 * M * N * K
                g_h, g_n = flops / th / 1e9, flops / tn / 1e9
                pct = f"{100 * g_h / peak:.0f}%" if peak else "n/a"
                cpu = f"{cpu_ratio:.2f}" if cpu_ratio else "n/a"
                print(f"| {M} x {K} x {N} | {threads} | {g_h:.1f} | {g_n:.1f} | {g_h / g_n:.2f} | {cpu} | {pct} |")
    finally:
        core.set_num_threads(default_threads)
    print()
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}. Wall-clock medians; "
          "'by CPU time' (1 thread only) divides the CPU seconds this thread spent, which time "
          "slices lost to other processes do not inflate.")


if __name__ == "__main__":
    main()
