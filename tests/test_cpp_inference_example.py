"""examples/cpp_inference end to end, the C++ user's path: prepare.py trains and exports the
H -> WW MLP, the C++ program is configured against the installed package's CMake config
(python -m hepnn.config --cmakedir, as the example's README says), built and run; its scores,
batch 1 and batched, must equal hepnn's Python answer. Works on an installed wheel and on the
developer tree (PYTHONPATH=python after ninja -C build-dev). Skipped only when cmake or a C++
compiler is missing."""
import csv
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
import hepnn  # noqa: E402
import hepnn.config  # noqa: E402
import hepnn.metrics  # noqa: E402
import hepnn.runtime  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cpp_inference"


def _toolchain():
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("cmake or a C++ compiler is missing")
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def _cli(flag):
    r = subprocess.run([sys.executable, "-m", "hepnn.config", flag], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _prepare_module():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import prepare
    finally:
        sys.path.remove(str(EXAMPLE))
    return prepare


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The exported model and 301 held-out events, with hepnn's Python scores for them."""
    out = tmp_path_factory.mktemp("cpp_inference")
    return _prepare_module().main(["--out", str(out), "--epochs", "2", "--train-events", "3000", "--events", "301"])


def _gnu_install(prefix):
    """The C++-only build (no Python, GNU layout, versioned SONAME) installed under `prefix`; it
    shares tests/test_runtime_cpp.py's build directory, so the library is compiled once."""
    from tests.test_runtime_cpp import build_program

    build = build_program().parents[2]
    r = subprocess.run(["cmake", "--install", str(build), "--prefix", str(prefix)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (config,) = prefix.glob("*/cmake/hepnn/hepnnConfig.cmake")
    lib = config.parents[2]
    assert (lib / "libhepnn_runtime.so").is_symlink() and (lib / f"libhepnn_runtime.so.{hepnn.__version__}").is_file()
    return config.parent


@pytest.fixture(scope="module", params=["package", "gnu"])
def program(request, tmp_path_factory):
    """hepnn_infer, configured and built like a user would: against the installed Python package
    (python -m hepnn.config --cmakedir), or against a C++-only install (cmake --install)."""
    gen = _toolchain()
    build = tmp_path_factory.mktemp(f"cpp_inference_build_{request.param}")
    cmake_dir = _cli("--cmakedir") if request.param == "package" else _gnu_install(build / "prefix")
    cfg = ["cmake", "-S", str(EXAMPLE), "-B", str(build / "b"), *gen, f"-Dhepnn_DIR={cmake_dir}"]
    for cmd in (cfg, ["cmake", "--build", str(build / "b"), "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exe = build / "b" / "hepnn_infer"
    assert exe.exists()
    return exe


def _run(exe, *args):
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}  # the rpath must do
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_example_scores_equal_python(program, prepared, tmp_path):
    scores_csv = tmp_path / "scores.csv"
    r = _run(program, prepared["model"], prepared["events"], "--batch", 64, "--repeat", 2, "--csv", scores_csv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "input 'features' (batch, 12), output 'p_signal' (batch, 1); 301 events" in r.stdout
    assert "batch 1 " in r.stdout and "batch 64 " in r.stdout and "(agree)" in r.stdout
    with open(scores_csv) as f:
        rows = list(csv.DictReader(f))
    assert [int(row["event"]) for row in rows] == list(range(301))
    single = np.array([float(row["score_batch1"]) for row in rows])
    batched = np.array([float(row["score_batched"]) for row in rows])

    # hepnn's Python answer: the trained model on standardised features (float64 sigmoid); the
    # exported model has the scaler folded into its first layer, which moves float32 rounding.
    ref = prepared["scores"].ravel()
    assert hepnn.metrics.roc_auc_score(prepared["labels"], single) > 0.75  # a trained classifier
    np.testing.assert_allclose(single, ref, rtol=0, atol=2e-5)
    np.testing.assert_allclose(batched, ref, rtol=0, atol=2e-5)
    # The same file through hepnn.runtime from Python: the same kernels, so equal to float32
    # rounding of the CSV's 9 digits, batch by batch.
    sess = hepnn.runtime.Session(prepared["model"])
    x = prepared["features"]
    py_batched = np.concatenate([sess.run({"features": x[i:i + 64]})[0] for i in range(0, len(x), 64)]).ravel()
    np.testing.assert_array_equal(batched.astype(np.float32), py_batched)
    py_single = np.concatenate([sess.run({"features": x[i:i + 1]})[0] for i in range(len(x))]).ravel()
    np.testing.assert_array_equal(single.astype(np.float32), py_single)


def test_example_refuses_bad_input(program, prepared, tmp_path):
    events = pathlib.Path(prepared["events"]).read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(events[:100])
    r = _run(program, prepared["model"], short)
    assert r.returncode == 2 and "[events]" in r.stderr and "the header says" in r.stderr, r.stderr
    bad = bytearray(events)
    bad[24 + 4 * 12 * 5 + 8:24 + 4 * 12 * 5 + 12] = np.array([np.nan], "<f4").tobytes()  # event 5, feature 2
    nan_file = tmp_path / "nan.bin"
    nan_file.write_bytes(bytes(bad))
    r = _run(program, prepared["model"], nan_file)
    assert r.returncode == 2 and "event 5, feature 2 is not finite" in r.stderr, r.stderr
    narrow = _prepare_module().write_events(tmp_path / "narrow.bin", prepared["features"][:, :11])
    r = _run(program, prepared["model"], narrow)
    assert r.returncode == 2 and "the model's input is not (batch, 11)" in r.stderr, r.stderr
    r = _run(program, tmp_path / "missing.onnx", prepared["events"])  # hepnn::RuntimeError
    assert r.returncode == 1 and "[runtime]" in r.stderr and "status 3" in r.stderr, r.stderr
    r = _run(program, prepared["model"], prepared["events"], "--batch", 0)
    assert r.returncode == 2 and "usage" in r.stderr


def test_prepared_event_file_round_trip(prepared):
    prepare = _prepare_module()
    np.testing.assert_array_equal(prepare.read_events(prepared["events"]), prepared["features"])
    with pytest.raises(ValueError, match="finite"):
        prepare.write_events(os.devnull, np.array([[1.0, np.inf]]))
