"""GEMM code paths the registry does not choose by itself: the portable and AVX2 micro-kernels (forced with
HEPNN_DISABLE_AVX2=1 / HEPNN_DISABLE_AVX512=1 in a subprocess, since the choice is made once per process) and one thread
versus two giving the same result."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hepnn._core as core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KERNEL_CHECK = textwrap.dedent(
    """
    import numpy as np
    import hepnn._core as core
    import sys
    feats = core.cpu_features()
    if sys.argv[1] == "portable":
        assert not feats["avx2_kernels"], "HEPNN_DISABLE_AVX2 did not take effect"
    elif sys.argv[1] == "avx2":
        assert not feats.get("avx512_kernels", False), "HEPNN_DISABLE_AVX512 did not take effect"
    rng = np.random.default_rng(5)
    for dtype, tol in ((np.float32, 2e-4), (np.float64, 1e-11)):
        for M, K, N in ((1, 1, 1), (2, 1, 2), (15, 3, 33), (7, 33, 5), (33, 257, 17), (29, 513, 47), (257, 65, 129), (9, 300, 4100), (17, 40, 1), (1, 40, 17)):
            for ta in (False, True):
                for tb in (False, True):
                    a = rng.standard_normal((K, M) if ta else (M, K))
                    b = rng.standard_normal((N, K) if tb else (K, N))
                    c = rng.standard_normal((M, N))
                    out = c.astype(dtype)
                    core.gemm(a.astype(dtype), b.astype(dtype), out, trans_a=ta, trans_b=tb,
                              alpha=0.75, beta=-0.5)
                    ref = 0.75 * (a.T if ta else a) @ (b.T if tb else b) - 0.5 * c
                    err = np.abs(out - ref) / (1 + np.abs(ref))
                    assert err.max() < tol, (dtype, M, K, N, ta, tb, err.max())
    print(sys.argv[1], "ok")
    """
)


@pytest.mark.parametrize("path,flag", [("portable", "HEPNN_DISABLE_AVX2"),
                                       ("avx2", "HEPNN_DISABLE_AVX512"), ("built", None)])
def test_each_kernel_in_subprocess(path, flag):
    """The portable, AVX2 and default (AVX-512 where the CPU has it) micro-kernels, edge tiles
    and all four layouts, against NumPy float64."""
    env = dict(os.environ)
    if flag:
        env[flag] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(core.__file__))), ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    run = subprocess.run([sys.executable, "-c", KERNEL_CHECK, path], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{path} ok" in run.stdout


@pytest.fixture
def restore_threads():
    n = core.get_num_threads()
    yield
    core.set_num_threads(n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(256, 128, 128), (9, 300, 4100), (300, 600, 500), (1000, 64, 8),
                                   (4000, 300, 1), (1, 300, 4000)])
def test_one_and_two_threads_agree(dtype, shape, restore_threads):
    # Threads split disjoint tiles and never a K sum, so the results match bit for bit.
    M, K, N = shape
    rng = np.random.default_rng(11)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((N, K)).astype(dtype)
    results = []
    for threads in (1, 2):
        core.set_num_threads(threads)
        out = np.full((M, N), np.nan, dtype)
        core.gemm(a, b, out, trans_b=True)
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], a.astype(np.float64) @ b.T.astype(np.float64),
                               rtol=2e-4, atol=2e-4 if dtype == np.float32 else 1e-11)


def test_batched_threads_agree(restore_threads):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 33, 20)).astype(np.float32)
    b = rng.standard_normal((20, 17)).astype(np.float32)
    results = []
    for threads in (1, 2):
        core.set_num_threads(threads)
        out = np.full((16, 33, 17), np.nan, np.float32)
        core.gemm(a, b, out)
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], a.astype(np.float64) @ b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_linear_threads_agree_and_optional_outputs(act, restore_threads):
    # 2048 rows spread the dz pass and both backward GEMMs over threads.
    rng = np.random.default_rng(7)
    B, I, O = 2048, 96, 80
    x = rng.standard_normal((B, I)).astype(np.float32)
    w = (rng.standard_normal((O, I)) / 10).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    dy = rng.standard_normal((B, O)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        core.set_num_threads(threads)
        y, z = np.full((B, O), np.nan, np.float32), np.full((B, O), np.nan, np.float32)
        core.linear_forward(x, w, b, y, z, act=act)
        dx, dw, db = np.full((B, I), np.nan, np.float32), np.full((O, I), np.nan, np.float32), np.full(O, np.nan, np.float32)
        core.linear_backward(x, w, z, y, dy, dx, dw, db, act=act)
        # dx and db are optional: the remaining outputs must not change.
        dw2 = np.full((O, I), np.nan, np.float32)
        core.linear_backward(x, w, z, y, dy, None, dw2, None, act=act)
        np.testing.assert_array_equal(dw, dw2)
        runs.append((y, z, dx, dw, db))
    for one, two in zip(*runs):
        np.testing.assert_array_equal(one, two)
