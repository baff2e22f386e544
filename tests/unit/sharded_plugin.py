"""What the tests of plugins/xent-sharded's adapters share: the plug-in's adapter started from
its source (its ranks or worker inherit the path), and float32-exact seeded logits."""
import importlib
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "xent-sharded"


@contextmanager
def started(module: str, name: str):
    """The adapter class `name` of the plug-in's `module`, made, yielded, then closed."""
    sys.path.insert(0, str(PLUGIN))  # spawned ranks and workers inherit the path
    try:
        adapter = getattr(importlib.import_module(module), name)()
        try:
            yield adapter
        finally:
            adapter.close()
    finally:
        sys.path.remove(str(PLUGIN))


def float32_values(shape, seed, scale=3.0):
    """Seeded logits that float32 holds exactly, as float64."""
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32).astype(np.float64)
