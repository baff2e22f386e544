"""Where the Triton kernels run: natively on CUDA, else through Triton's interpreter on the CPU.

Triton reads TRITON_INTERPRET when a kernel is decorated, that is when the kernel library is
imported, so this module is imported first by every adapter here. The interpreter runs the
kernels' own code in NumPy, slowly (about a second a call at 64 x 1000), so the CPU checks use
small cases; it also lacks some of Triton's library functions, which makes some options
not-offered there (each adapter says which, and why).
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cpu" if INTERPRETED else "cuda"


def devices() -> tuple[str, ...]:
    return (DEVICE,)
