"""Float64 NumPy reference for cross-entropy losses, their gradients and conditioning.

One module per op family under reference/ops/ (loss, variants, gradients, conditioning,
declarations), the numerics they share under reference/numerics/, the options applied around
them in reference/options.py, and the table of ops in reference/registry.py.

Every function is pure and takes float64 arrays (integer arrays for class labels). The
inputs are the values *after* they were cast to the dtype under test, so the reference
answers "what is the exact result for the numbers the framework actually saw".
"""
from reference.registry import (OPS, evaluate_grad, evaluate_loss, evaluate_loss_and_scale, evaluate_scale, has_grad,
                                variant_names)

__all__ = ["OPS", "evaluate_loss", "evaluate_grad", "evaluate_loss_and_scale", "evaluate_scale", "has_grad",
           "variant_names"]
