"""The C++ runtime as this hepnn ships it (an installed wheel, or the developer tree staged by
ninja -C build-dev): python -m hepnn.config points at headers, library and CMake config; the
library links no Python and no third-party library, exports only the C API, carries a SONAME and
no rpath; find_package(hepnn) honours versions and components. Skipped without the tools."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import hepnn
import hepnn.config

# What a C++ shared library on Linux may need from the system: the C and C++ runtimes only.
SYSTEM_LIBS = re.compile(r"^(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[-\w]*)\.so(\.\d+)*$")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hepnn.config", *args], capture_output=True, text=True, timeout=120)


def test_config_paths():
    for flag, fn in (("--cmakedir", hepnn.config.cmake_dir), ("--includedir", hepnn.config.include_dir),
                     ("--libdir", hepnn.config.lib_dir), ("--library", hepnn.config.library)):
        r = _cli(flag)
        assert r.returncode == 0 and r.stdout.strip() == fn(), (flag, r.stdout, r.stderr)
    cmake = pathlib.Path(hepnn.config.cmake_dir())
    assert (cmake / "hepnnConfig.cmake").is_file() and (cmake / "hepnnConfigVersion.cmake").is_file()
    inc = pathlib.Path(hepnn.config.include_dir()) / "hepnn"
    assert (inc / "hepnn.h").is_file() and (inc / "runtime.hpp").is_file()
    # Inside this very package (one of its directories, in an editable install): the wheel
    # carries it, no system install.
    lib = pathlib.Path(hepnn.config.library()).resolve()
    assert any(lib.is_relative_to(pathlib.Path(d).resolve()) for d in hepnn.__path__), (lib, hepnn.__path__)
    r = _cli()
    assert r.returncode == 2 and "--cmakedir" in r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks the ELF dynamic section")
def test_library_links_only_the_system():
    if not shutil.which("readelf") or not shutil.which("nm"):
        pytest.skip("readelf or nm (binutils) is missing")
    lib = hepnn.config.library()
    dyn = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
    assert needed and all(SYSTEM_LIBS.match(n) for n in needed), needed
    assert not any("python" in n for n in needed)
    assert re.search(r"\(SONAME\)\s+Library soname: \[libhepnn_runtime\.so(\.\d+)*\]", dyn), dyn
    assert "RPATH" not in dyn and "RUNPATH" not in dyn, dyn  # it needs none: nothing to find
    syms = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1] for line in syms.splitlines() if line.strip()}
    exported = {n for n in names if not n.startswith("HEPNN_")}  # version-script node name, if any
    assert "hepnn_session_run" in exported and "hepnn_last_error" in exported
    assert all(n.startswith("hepnn_") for n in exported), sorted(n for n in exported if not n.startswith("hepnn_"))[:10]


def test_find_package_versions_and_components(tmp_path):
    if not shutil.which("cmake"):
        pytest.skip("cmake is missing")
    (tmp_path / "CMakeLists.txt").write_text(f"""
cmake_minimum_required(VERSION 3.18)
project(probe LANGUAGES NONE)
find_package(hepnn {hepnn.__version__} CONFIG REQUIRED COMPONENTS runtime)
if(NOT TARGET hepnn::runtime OR NOT hepnn_VERSION VERSION_EQUAL {hepnn.__version__})
  message(FATAL_ERROR "no hepnn::runtime or version ${{hepnn_VERSION}}")
endif()
get_target_property(inc hepnn::runtime INTERFACE_INCLUDE_DIRECTORIES)
message(STATUS "probe include ${{inc}}")
unset(hepnn_FOUND)
find_package(hepnn 99.0 CONFIG QUIET)
if(hepnn_FOUND)
  message(FATAL_ERROR "version 99.0 accepted")
endif()
find_package(hepnn CONFIG QUIET COMPONENTS no_such_part)
if(hepnn_FOUND)
  message(FATAL_ERROR "unknown component accepted")
endif()
""")
    r = subprocess.run(["cmake", "-S", str(tmp_path), "-B", str(tmp_path / "b"), f"-Dhepnn_DIR={hepnn.config.cmake_dir()}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    inc = re.search(r"probe include (.+)", r.stdout).group(1).strip()
    assert os.path.samefile(inc, hepnn.config.include_dir())


def test_config_docstring_examples_run():
    import doctest

    result = doctest.testmod(hepnn.config)
    assert result.attempted > 0 and result.failed == 0
