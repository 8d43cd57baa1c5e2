"""Shared by the event-generation scripts: atomic .npz writing, package versions for the run
metadata, and splitting a count over worker processes."""
from __future__ import annotations

import os
import tempfile

import numpy as np


def write_npz(path, arrays):
    """Write ``arrays`` compressed to a temporary file beside ``path``, fsync, then rename, so an
    interrupted run never leaves a half-written sample."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp_sample_", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def version(name):
    """Installed version of a distribution, or "unknown"."""
    try:
        from importlib.metadata import version as _v

        return _v(name)
    except Exception:  # pragma: no cover
        return "unknown"


def split(n, parts):
    """``n`` items over ``parts`` workers, the first ones taking the remainder."""
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
