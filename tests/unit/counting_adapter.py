"""An adapter that writes each call it makes to the file COUNTING_LOG names (the floor's tests)."""
import os

import numpy as np

from conformance.adapters.api import Adapter, Capability, Result


def _sparse(z, labels, options):
    shifted = z - z.max(axis=-1, keepdims=True)
    return np.log(np.exp(shifted).sum(axis=-1)) - np.take_along_axis(shifted, labels[..., None], axis=-1)[..., 0]


class Counting(Adapter):
    framework = "counting-kernel"
    capabilities = {"sparse_softmax_cross_entropy": Capability(_sparse, dtypes=("float64",), differentiable=False)}

    def version(self):
        return "1.0"

    def loss(self, op, prediction, labels, options, dtype, device):
        with open(os.environ["COUNTING_LOG"], "a") as log:
            log.write(f"{op} {np.shape(prediction)} {options}\n")
        out = self.capability(op).implementation(np.asarray(prediction), np.asarray(labels), options)
        return Result(out, "float64", "cpu")
