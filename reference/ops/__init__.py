"""The op families, one module each: its losses, variants, gradients and conditioning, and
the declarations (DECLARATIONS) that reference/registry.py registers."""
from reference.ops import binary, categorical, softmax, squared_error

FAMILIES = (binary, softmax, categorical, squared_error)
