"""Reference values kept on disk for the other processes of one run, keyed by content.

Every process of `xent-conformance run` (one per Keras backend, one per framework with a
process of its own) checks the same cases, so each would compute the same references again;
a double-double reference at 128,256 classes takes seconds. With XENT_CONFORMANCE_REFERENCE_CACHE
naming a directory, a reference is written there once and read by the rest. The key is the
content that decides the value: the reference's own source code, the op, variant, dtype and
quantity, the case's name (its seeded cotangents and directions derive from it), its options,
the exact bytes of its inputs, the code around them and the NumPy version. `run` keeps the
cache for one run only.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from conformance.cases import Case

CACHE_VARIABLE = "XENT_CONFORMANCE_REFERENCE_CACHE"


@lru_cache(maxsize=1)
def reference_code_digest() -> str:
    """A digest of the reference package's source, expected.py's and checks' (cotangents, directions)
    and the NumPy and ml_dtypes versions: a change to any gives new keys."""
    import ml_dtypes

    import reference
    from conformance.core import checks, expected

    digest = hashlib.sha256(f"numpy {np.__version__} ml_dtypes {ml_dtypes.__version__}".encode())
    sources = sorted(Path(reference.__file__).parent.rglob("*.py")) + [Path(checks.__file__), Path(expected.__file__)]
    for path in sources:  # the reference, and the seeds of cotangents and directions around it
        digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _feed(digest: hashlib._Hash, value: object) -> None:
    """An unambiguous encoding of options and inputs: type tags, lengths, exact array bytes."""
    if isinstance(value, dict):
        digest.update(b"d%d" % len(value))
        for key in sorted(value):
            _feed(digest, str(key))
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(b"l%d" % len(value))
        for item in value:
            _feed(digest, item)
    elif isinstance(value, np.ndarray) or isinstance(value, np.generic):
        array = np.ascontiguousarray(value)
        digest.update(f"a{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    else:
        text = repr(value).encode()
        digest.update(f"s{type(value).__name__}{len(text)}:".encode() + text)


def key(case: Case, variant: str, dtype: str, quantity: str) -> str:
    digest = hashlib.sha256(reference_code_digest().encode())
    _feed(digest, [case.name, case.op, variant, dtype, quantity, case.options, case.inputs])
    return digest.hexdigest()


def directory() -> Path | None:
    named = os.environ.get(CACHE_VARIABLE)
    return Path(named) if named else None


def load(case: Case, variant: str, dtype: str, quantity: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(expected, scale) from the cache, or None."""
    where = directory()
    if where is None:
        return None
    path = where / f"{key(case, variant, dtype, quantity)}.npz"
    try:
        with np.load(path) as stored:
            return stored["expected"], stored["scale"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # not there yet, or unreadable: compute it


def store(case: Case, variant: str, dtype: str, quantity: str,
          values: tuple[npt.ArrayLike, npt.ArrayLike]) -> None:
    """Write (expected, scale) atomically: a reader sees a whole entry or none."""
    where = directory()
    if where is None:
        return
    expected, scale = values
    temporary = None
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=where, suffix=".tmp", delete=False) as file:
            temporary = file.name
            np.savez(file, expected=np.asarray(expected), scale=np.asarray(scale))
        os.replace(temporary, where / f"{key(case, variant, dtype, quantity)}.npz")
    except OSError:  # a full or read-only disk costs a recomputation elsewhere, never a check
        if temporary and os.path.exists(temporary):
            os.remove(temporary)
