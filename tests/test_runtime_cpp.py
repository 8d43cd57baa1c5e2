"""Builds tests/cpp/runtime_c_api.cpp against libhepnn_runtime (cmake -DHEPNN_RUNTIME=ON) and runs
it on an MLP exported here: output vs NumPy, error paths, 16 threads, no steady-state allocation.
Skipped when cmake or a C++ compiler is missing."""
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def build_program():
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("cmake or a C++ compiler is missing")
    build = ROOT / "build-cpptest"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    cfg = ["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DHEPNN_RUNTIME=ON", "-DHEPNN_TESTS=ON",
           "-DHEPNN_PYTHON=OFF", "-DHEPNN_CUDA=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    targets = ["--target", "test_runtime_c_api", "fuzz_loader"]
    for cmd in (cfg, ["cmake", "--build", str(build), *targets, "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exe = build / "cpp" / "runtime" / "test_runtime_c_api"
    assert exe.exists()
    return exe


@pytest.mark.parametrize("n_out", [1, 3])
def test_c_api_program(tmp_path, n_out):
    exe = build_program()
    rng = np.random.default_rng(0)
    sizes = [30, 128, 128, 128, n_out]
    nodes, inits, prev = [], [], "x"
    ws = []
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        ws.append((w, b))
        inits += [numpy_helper.from_array(w, f"W{k}"), numpy_helper.from_array(b, f"B{k}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{k}", f"B{k}"], [f"h{k}"], transB=1))
        prev = f"h{k}"
        if k < 3:
            nodes.append(helper.make_node("Relu", [prev], [f"r{k}"]))
            prev = f"r{k}"
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 30])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", n_out])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    model = tmp_path / "mlp.onnx"
    model.write_bytes(m.SerializeToString())
    x = rng.standard_normal((7, 30)).astype(np.float32)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    r = subprocess.run([str(exe), str(model), str(tmp_path / "x.bin"), "7", "30", str(tmp_path / "y.bin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
    allocs = int(re.search(r"allocations_in_1000_runs (\d+)", r.stdout).group(1))
    # No heap allocation in steady state, the matrix-vector path (output width 1) included:
    # parallel_for takes a non-owning function reference.
    assert allocs == 0, allocs
    # Alternating batch sizes (7, 1, 5) hit the session's plan cache: no re-plan, no allocation.
    assert int(re.search(r"allocations_in_999_alternating_runs (\d+)", r.stdout).group(1)) == 0
    y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32).reshape(7, n_out)
    h = x.astype(np.float64)
    for k, (w, b) in enumerate(ws):
        h = h @ w.T.astype(np.float64) + b
        if k < 3:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(y, h, rtol=1e-5, atol=1e-6)
    print(r.stdout)


def test_fuzz_loader_mutations(tmp_path):
    """50,000 mutated models (byte flips, truncations, splices) through the C API in one process,
    seeded by models made here and the committed corpus (tests/cpp/corpus, also libFuzzer's seeds)."""
    exe = build_program().parent / "fuzz_loader"
    import sys
    sys.path.insert(0, str(ROOT / "tests"))
    from test_runtime_hostile import small_model

    seeds = []
    for k, opset in enumerate([13, 17, 21]):
        p = tmp_path / f"seed{k}.onnx"
        p.write_bytes(small_model(opset))
        seeds.append(str(p))
    seeds += sorted(str(p) for p in (ROOT / "tests" / "cpp" / "corpus").glob("*.onnx"))
    r = subprocess.run([str(exe), "50000", *seeds], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "no crash" in r.stdout, r.stdout + r.stderr


def test_c_api_shape_subgraph_model(tmp_path):
    """The C API program on a graph of the non-layer ops: a torch-style shape subgraph into Reshape,
    ReduceMean, Greater/Where/ReduceSum (a masked sum), TopK (values and cast indices), Gather,
    Concat, Gemm. Steady-state runs must not allocate (TopK's scratch belongs to the session)."""
    exe = build_program()
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((4, 12)) / 4).astype(np.float32)
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    inits = {"zero": i64(0), "ax0": i64([0]), "tail": i64([3, 4]), "k": i64([2]), "cols": i64([0, 5]),
             "fz": np.array(0, np.float32), "W": w}
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "ax0"], ["bu"]),
             helper.make_node("Concat", ["bu", "tail"], ["spec"], axis=0),
             helper.make_node("Reshape", ["x", "spec"], ["xr"]),
             helper.make_node("ReduceMean", ["xr"], ["mean"], axes=[2], keepdims=0),
             helper.make_node("Greater", ["xr", "fz"], ["pos"]), helper.make_node("Where", ["pos", "xr", "fz"], ["xp"]),
             helper.make_node("ReduceSum", ["xp", "m1"], ["psum"], keepdims=0),
             helper.make_node("TopK", ["x", "k"], ["tv", "ti"], axis=1), helper.make_node("Cast", ["ti"], ["tf"], to=1),
             helper.make_node("Gather", ["x", "cols"], ["g"], axis=1),
             helper.make_node("Concat", ["mean", "psum", "tv", "tf", "g"], ["z"], axis=1),
             helper.make_node("Gemm", ["z", "W"], ["y"], transB=1)]
    inits["m1"] = i64([-1])
    g = helper.make_graph(nodes, "shapes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    model = tmp_path / "shapes.onnx"
    model.write_bytes(m.SerializeToString())
    x = rng.standard_normal((7, 12)).astype(np.float32)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    r = subprocess.run([str(exe), str(model), str(tmp_path / "x.bin"), "7", "12", str(tmp_path / "y.bin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
    assert int(re.search(r"allocations_in_1000_runs (\d+)", r.stdout).group(1)) == 0
    assert int(re.search(r"allocations_in_999_alternating_runs (\d+)", r.stdout).group(1)) == 0
    y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32).reshape(7, 4)
    xd = x.astype(np.float64)
    xr = xd.reshape(7, 3, 4)
    order = np.argsort(-x, axis=1, kind="stable")[:, :2]
    z = np.concatenate([xr.mean(2), np.where(xr > 0, xr, 0).sum(2), np.take_along_axis(xd, order, 1), order,
                        xd[:, [0, 5]]], 1)
    np.testing.assert_allclose(y, z @ w.T, rtol=1e-5, atol=1e-5)
    print(r.stdout)
