"""Floating-point formats by name: NumPy types, machine epsilon, rounding of constants."""
import numpy as np
import numpy.typing as npt

try:  # bfloat16 comes with ml_dtypes, which JAX and TensorFlow both depend on
    import ml_dtypes

    _BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - only without any bfloat16-capable framework
    _BFLOAT16 = None

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        if _BFLOAT16 is None:
            raise ValueError("bfloat16 needs the ml_dtypes package")
        return _BFLOAT16
    return np.dtype(name)


def eps(name: str) -> float:
    """Unit roundoff times two: the gap between 1 and the next number of the format."""
    return float(np.finfo(numpy_dtype(name)).eps) if name != "bfloat16" else 2.0**-7


def round_to(value: npt.ArrayLike, name: str) -> np.ndarray:
    """A float64 array holding exactly the values of `value` rounded to format `name`."""
    return np.asarray(value, dtype=np.float64).astype(numpy_dtype(name)).astype(np.float64)


def constant(value: float, name: str) -> float:
    """A framework constant such as 1e-7 as the format under test stores it."""
    return float(round_to(value, name))
