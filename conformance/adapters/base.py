"""The adapter protocol: one class per framework, mapping canonical ops to its public calls.

An adapter receives NumPy inputs already cast to the dtype under test (integer labels as
int64), runs the framework's own function on the requested device, and returns the result
as float64 together with the dtype and device the framework really produced, so that a
silent downcast or a tensor that never reached the GPU is seen, not assumed.
"""
from dataclasses import dataclass, field

import numpy as np

from reference.dtypes import numpy_dtype


BASE_OPTIONS = ("reduction", "axis", "half")
REDUCTIONS = ("none", "sum", "mean")  # what every adapter offers; weighted_mean is Keras 3's


class NotOffered(Exception):
    """The framework has no public function for this op, option, dtype or device."""


class Unavailable(Exception):
    """The framework cannot be imported or started in this process."""


@dataclass
class Result:
    values: np.ndarray  # float64
    dtype: str  # the dtype the framework returned
    device: str  # cpu or cuda: where the result was computed
    mode: str = ""  # how it ran, where a framework has several ways (JAX: jit, eager)
    others: list = field(default_factory=list)  # the same call run the other ways: Results

    def all_modes(self):
        return [self, *self.others]


class Adapter:
    framework = ""
    variants: dict = {}  # canonical op -> reference variant this framework follows
    dtypes = ("float16", "bfloat16", "float32", "float64")
    autodiff = True
    offered_options: dict = {}  # canonical op -> options beyond reduction, axis and half
    reductions = REDUCTIONS

    def version(self):
        raise NotImplementedError

    def environment(self):
        """What the results file records about this framework."""
        return {"version": self.version(), "devices": list(self.devices())}

    def devices(self):
        return ("cpu",)

    def check_offered(self, op, dtype, device, quantity, options=None):
        if op not in self.variants:
            raise NotOffered(f"{self.framework} has no public function for {op}")
        if dtype not in self.dtypes:
            raise NotOffered(f"{self.framework} does not compute {op} in {dtype}")
        if quantity != "loss" and not self.autodiff:
            raise NotOffered(f"{self.framework} has no automatic differentiation")

        reduction = (options or {}).get("reduction", "none")
        if reduction not in self.reductions:
            raise NotOffered(f"{self.framework} has no {reduction} reduction")
        for name, value in (options or {}).items():
            if name not in BASE_OPTIONS and value is not None and name not in self.offered_options.get(op, ()):
                raise NotOffered(f"{self.framework} {op} has no {name} option")

    def loss(self, op, prediction, labels, options, dtype, device):
        raise NotImplementedError

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction"):
        """d sum(loss) / d prediction, or / d labels with wrt="labels"."""
        raise NotImplementedError


def elementwise_reduce(values, reduction, total, mean):
    """Apply a canonical reduction with the framework's own sum and mean."""
    if reduction == "sum":
        return total(values)
    if reduction == "mean":
        return mean(values)
    return values


def as_float(array):
    """NumPy input for a framework that takes float32/float64 and casts itself (bfloat16)."""
    array = np.asarray(array)
    if array.dtype == numpy_dtype("bfloat16") or array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def move_class_axis(ndim, axis):
    """Axis order that puts the class axis second, where PyTorch wants it."""
    axis %= ndim
    order = list(range(ndim))
    order.insert(1, order.pop(axis))
    return order
