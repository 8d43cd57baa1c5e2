"""The ONNX loader under libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer: builds
tests/cpp/fuzz_loader.cpp with clang (-DHEPNN_LIBFUZZER=ON), then fuzzes for a bounded time from
the committed seed corpus (tests/cpp/corpus). Any crash, sanitizer report, leak or hang fails the
test. Skipped only when no clang with libFuzzer is installed (.ci/run installs clang-14)."""
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FUZZ_SECONDS = int(os.environ.get("HEPNN_FUZZ_SECONDS", "60"))


def _clang():
    for name in ("clang++", "clang++-14", "clang++-15", "clang++-16", "clang++-17", "clang++-18"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _build(tmp_path, clang):
    build = ROOT / "build-fuzz"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    flags = "-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -g -O1"
    cfg = ["cmake", "-S", str(ROOT), "-B", str(build), *gen, f"-DCMAKE_CXX_COMPILER={clang}",
           f"-DCMAKE_CXX_FLAGS={flags}", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
           "-DHEPNN_RUNTIME=ON", "-DHEPNN_TESTS=ON", "-DHEPNN_LIBFUZZER=ON", "-DHEPNN_PYTHON=OFF",
           "-DHEPNN_CUDA=OFF"]
    for cmd in (cfg, ["cmake", "--build", str(build), "--target", "fuzz_loader", "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 and "fsanitize=fuzzer" in r.stdout + r.stderr and cmd is cfg:
            pytest.skip(f"{clang} has no libFuzzer: {r.stderr[-300:]}")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exe = build / "cpp" / "runtime" / "fuzz_loader"
    assert exe.exists()
    return exe


def test_libfuzzer_loader(tmp_path):
    clang = _clang()
    if clang is None or not shutil.which("cmake"):
        pytest.skip("clang++ (with libFuzzer) or cmake is not installed")
    exe = _build(tmp_path, clang)
    corpus = tmp_path / "corpus"  # a working copy: libFuzzer adds the inputs it finds
    shutil.copytree(ROOT / "tests" / "cpp" / "corpus", corpus)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
               LD_LIBRARY_PATH=str(exe.parent) + os.pathsep + os.environ.get("LD_LIBRARY_PATH", ""))
    r = subprocess.run([str(exe), str(corpus), f"-max_total_time={FUZZ_SECONDS}", "-timeout=10",
                        "-rss_limit_mb=2048", "-max_len=65536", "-print_final_stats=1",
                        f"-artifact_prefix={tmp_path}/"],
                       capture_output=True, text=True, timeout=FUZZ_SECONDS + 600, env=env)
    log = r.stdout[-4000:] + r.stderr[-6000:]
    assert r.returncode == 0, log
    assert "Done" in r.stderr and "stat::number_of_executed_units" in r.stderr, log
    runs = int(r.stderr.split("stat::number_of_executed_units:")[1].split()[0])
    assert runs > 1000, log
    print(f"libFuzzer: {runs} inputs in {FUZZ_SECONDS} s, no crash")
