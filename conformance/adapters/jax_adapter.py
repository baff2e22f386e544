"""JAX with optax's losses, run both jit-compiled (as in training) and eagerly, op by op.

XLA fuses and rewrites a jitted function as a whole, so the two paths can round differently;
both are checked against the reference, and a check passes only when both do.
"""
import jax

jax.config.update("jax_enable_x64", True)  # float64 is otherwise silently float32

import jax.numpy as jnp
import numpy as np
import optax

from conformance.adapters.api import Adapter, Capability, Result, as_float, elementwise_reduce

DTYPES = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32, "float64": jnp.float64}


def jax_devices():
    try:
        return ("cpu", "cuda") if jax.devices("gpu") else ("cpu",)
    except RuntimeError:
        return ("cpu",)


def to_array(array, dtype, device):
    array = np.asarray(array)
    target = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    if array.dtype.kind in "iu":
        return jax.device_put(jnp.asarray(array, dtype=jnp.int64), target)
    return jax.device_put(jnp.asarray(as_float(array)).astype(DTYPES[dtype]), target)


def to_result(array, mode=""):
    platform = next(iter(array.devices())).platform
    return Result(np.asarray(array.astype(jnp.float64)), str(array.dtype), "cuda" if platform == "gpu" else "cpu", mode)


def jit_and_eager(fn, *args):
    """fn(*args) compiled by jax.jit, with the eager result of the same call attached."""
    compiled = to_result(jax.jit(fn)(*args), "jit")
    compiled.others = [to_result(fn(*args), "eager")]
    return compiled


def sigmoid_cross_entropy(x, y, options):
    return optax.sigmoid_binary_cross_entropy(x, y)


def softmax_cross_entropy(z, y, options):
    return optax.softmax_cross_entropy(z, y, axis=options.get("axis", -1))


def sparse_softmax_cross_entropy(z, labels, options):
    return optax.softmax_cross_entropy_with_integer_labels(z, labels, axis=options.get("axis", -1))


def mean_squared_error(a, y, options):
    return optax.l2_loss(a, y) if options.get("half") else optax.squared_error(a, y)


MODES = ("jit", "eager")


class JaxAdapter(Adapter):
    framework = "jax"
    packages = ("jax", "jaxlib", "optax")
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, modes=MODES),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, modes=MODES),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy, modes=MODES),
        "mean_squared_error": Capability(mean_squared_error, options={"half"}, modes=MODES),
    }

    def version(self):
        return f"{jax.__version__} (optax {optax.__version__})"

    def devices(self):
        return jax_devices()

    def _function(self, op, options):
        implementation = self.capability(op).implementation
        reduction = options.get("reduction", "none")
        return lambda x, y: elementwise_reduce(implementation(x, y, options), reduction, jnp.sum, jnp.mean)

    def loss(self, op, prediction, labels, options, dtype, device):
        return jit_and_eager(self._function(op, options), to_array(prediction, dtype, device),
                             to_array(labels, dtype, device))

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction"):
        fn = self._function(op, options)
        grad = jax.grad(lambda x, y: jnp.sum(fn(x, y)), argnums=1 if wrt == "labels" else 0)
        return jit_and_eager(grad, to_array(prediction, dtype, device), to_array(labels, dtype, device))

