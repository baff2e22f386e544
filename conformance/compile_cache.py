"""One folder for the frameworks' persistent compilation caches, so that what one run compiled
(torch.compile's inductor graphs and AOT autograd, Triton's kernels, JAX's XLA executables) is
kept for the next: the first run is cold, the later ones warm.

    XENT_CONFORMANCE_CACHE=/some/folder    move it (CI keeps it between runs)
    XENT_CONFORMANCE_CACHE=off             keep nothing (each process compiles afresh)

The default is the user cache folder ($XDG_CACHE_HOME or ~/.cache)/xent-conformance. A folder
that cannot be written costs a warning and a recompile, never a failed check. A framework
setting the user made already (TORCHINDUCTOR_CACHE_DIR, ...) is left as it is.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

VARIABLE = "XENT_CONFORMANCE_CACHE"
OFF = ("off", "none", "0", "")

# environment variable -> subfolder; read by the frameworks when they first compile
_TORCH_VARIABLES = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}
_TORCH_SWITCHES = {"TORCHINDUCTOR_FX_GRAPH_CACHE": "1", "TORCHINDUCTOR_AUTOGRAD_CACHE": "1"}

_checked: dict[str, Path | None] = {}


def folder() -> Path | None:
    """The cache folder, created and writable; None when caching is off or impossible here."""
    wanted = os.environ.get(VARIABLE)
    if wanted is not None and wanted.strip().lower() in OFF:
        return None
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(wanted) if wanted else user_cache / "xent-conformance"
    key = str(path)
    if key not in _checked:
        _checked[key] = path if _writable(path) else None
    return _checked[key]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
        return True
    except OSError as exc:
        print(f"warning: compilation cache {path} is not writable ({exc.strerror or exc}); compiling afresh "
              f"(set {VARIABLE} to another folder, or to off)", file=sys.stderr)
        return False


def configure_environment() -> Path | None:
    """Point PyTorch's inductor and Triton at the folder (before they compile anything);
    the folder, or None."""
    root = folder()
    if root is None:
        return None
    for variable, sub in _TORCH_VARIABLES.items():
        os.environ.setdefault(variable, str(root / sub))
    for variable, value in _TORCH_SWITCHES.items():
        os.environ.setdefault(variable, value)
    return root


def configure_jax(jax) -> None:
    """JAX's persistent compilation cache in the folder, for every compilation however short
    (JAX keeps only those over a second by default, which is none of a loss's)."""
    root = folder()
    if root is None:
        return
    try:
        jax.config.update("jax_compilation_cache_dir", str(root / "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except (AttributeError, KeyError, ValueError) as exc:  # an older JAX without some setting
        print(f"warning: JAX's compilation cache not configured ({exc})", file=sys.stderr)


def describe() -> str:
    """One line for the run's summary: where the caches are, or that there are none."""
    root = folder()
    if root is None:
        return f"compilation caches: none ({VARIABLE}={os.environ.get(VARIABLE, '')!r} or not writable)"
    return f"compilation caches: {root} (clear it for a cold run; {VARIABLE} moves it)"
