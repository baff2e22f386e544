"""The relative view compiler maintainers use beside the ULP verdict: torch._dynamo.utils.same.

A compiled result is accepted when it is allclose to the eager one (rtol = atol = 1e-4), or
when its error against the float64 value is at most a multiplier times eager's own
(root-mean-square errors; the multiplier 2, or 3 for float16 and bfloat16 results and for
fewer than 1,000 elements), plus tol / 10. It says whether compiling made a result worse than
the framework's own eager result, not whether either is right: the ULP verdict says that.
"""
import numpy as np

TOL = 1e-4


def multiplier(dtype: str, size: int) -> float:
    return 3.0 if dtype in ("float16", "bfloat16") or size < 1000 else 2.0


def rms_error(reference: np.ndarray, values: np.ndarray) -> float:
    """Root-mean-square error over the elements finite in both (NaN where none is, or where the
    shapes differ: the verdict names that)."""
    reference, values = np.asarray(reference, np.float64), np.asarray(values, np.float64)
    if reference.shape != values.shape:
        return float("nan")
    finite = np.isfinite(reference) & np.isfinite(values)
    if not finite.any():
        return float("nan")
    return float(np.sqrt(np.mean(np.square(values[finite] - reference[finite]))))


def same(reference: np.ndarray, eager: np.ndarray, compiled: np.ndarray, dtype: str) -> bool:
    """Whether torch._dynamo.utils.same's rule accepts the compiled result beside eager's."""
    eager, compiled = np.asarray(eager, np.float64), np.asarray(compiled, np.float64)
    if eager.shape != compiled.shape:
        return False
    if np.allclose(compiled, eager, rtol=TOL, atol=TOL, equal_nan=True):
        return True
    eager_error, compiled_error = rms_error(reference, eager), rms_error(reference, compiled)
    if np.isnan(eager_error) or np.isnan(compiled_error):
        return bool(np.isnan(eager_error) and np.isnan(compiled_error))
    return compiled_error <= multiplier(dtype, eager.size) * eager_error + TOL / 10.0
