"""Where this hepnn's C++ inference runtime lives, for C++ programs built against it.

The wheel ships the runtime inside the package: ``hepnn/cpp/include`` (``hepnn/hepnn.h``, the C
API, and ``hepnn/runtime.hpp``, its C++ wrapper), ``hepnn/cpp/lib`` (``libhepnn_runtime``, which
links no Python) and ``hepnn/cpp/lib/cmake/hepnn`` (the CMake package config). A developer build
(``ninja -C build-dev``) stages the same tree under ``python/hepnn/cpp``. From a shell::

    cmake -S app -B build -Dhepnn_DIR="$(python -m hepnn.config --cmakedir)"

and in the app's CMakeLists.txt ``find_package(hepnn CONFIG REQUIRED)`` and
``target_link_libraries(app PRIVATE hepnn::runtime)``.

Example:
    >>> import os, hepnn.config
    >>> os.path.isfile(os.path.join(hepnn.config.cmake_dir(), "hepnnConfig.cmake"))
    True
    >>> os.path.isfile(os.path.join(hepnn.config.include_dir(), "hepnn", "runtime.hpp"))
    True
"""
from __future__ import annotations

import argparse
import os
import sys

__all__ = ["cmake_dir", "include_dir", "lib_dir", "library", "main"]

_LIBRARY = {"win32": "hepnn_runtime.dll", "darwin": "libhepnn_runtime.dylib"}.get(sys.platform, "libhepnn_runtime.so")


def _prefix() -> str:
    # The package may span several directories: an editable install keeps the Python sources in
    # the checkout and what CMake installed (hepnn/cpp with _core) in site-packages.
    dirs = [os.path.abspath(d) for d in sys.modules[__package__].__path__]
    for d in dirs:
        if os.path.isfile(os.path.join(d, "cpp", "lib", "cmake", "hepnn", "hepnnConfig.cmake")):
            return os.path.join(d, "cpp")
    return os.path.join(dirs[0], "cpp")


def _existing(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"[hepnn.config] no {what} at {path}: this hepnn has no C++ runtime. An installed wheel "
            "ships it (pip install .); a source checkout used with PYTHONPATH=python stages it "
            "when built with -DHEPNN_PYTHON=ON (ninja -C build-dev)")
    return path


def cmake_dir() -> str:
    """The directory holding hepnnConfig.cmake: pass it as ``-Dhepnn_DIR=`` to CMake."""
    return _existing(os.path.join(_prefix(), "lib", "cmake", "hepnn"), "CMake package config")


def include_dir() -> str:
    """The include directory: ``#include <hepnn/runtime.hpp>`` resolves under it."""
    return _existing(os.path.join(_prefix(), "include"), "runtime headers")


def lib_dir() -> str:
    """The directory of the runtime shared library (for -L and an rpath outside CMake)."""
    return os.path.dirname(library())


def library() -> str:
    """The runtime shared library's path (libhepnn_runtime.so on Linux)."""
    return _existing(os.path.join(_prefix(), "lib", _LIBRARY), "runtime library")


def main(argv=None) -> int:
    """``python -m hepnn.config --cmakedir | --includedir | --libdir | --library``: prints one path."""
    ap = argparse.ArgumentParser(prog="python -m hepnn.config", description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--cmakedir", action="store_const", dest="fn", const=cmake_dir,
                      help="directory of hepnnConfig.cmake (for -Dhepnn_DIR=)")
    what.add_argument("--includedir", action="store_const", dest="fn", const=include_dir,
                      help="include directory of hepnn/hepnn.h and hepnn/runtime.hpp")
    what.add_argument("--libdir", action="store_const", dest="fn", const=lib_dir,
                      help="directory of the runtime shared library")
    what.add_argument("--library", action="store_const", dest="fn", const=library,
                      help="path of the runtime shared library")
    args = ap.parse_args(argv)
    try:
        print(args.fn())
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
