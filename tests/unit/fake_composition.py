"""A NumPy adapter with a fused sparse cross-entropy and a composition of log_softmax and a
gather, for the relational check's own test. FAKE_FUSED_FAULT=grad scales the fused
gradient's first row by 1.01, a fault only the comparison with the composition sees here."""
import os

import numpy as np

from conformance.adapters.api import Adapter, Capability, Result

OP = "sparse_softmax_cross_entropy"


def log_softmax(z):
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def fused_loss(z, labels):
    top = np.max(z, axis=-1)
    lse = top + np.log(np.sum(np.exp(z - top[:, None]), axis=-1))
    return lse - np.take_along_axis(z, labels[:, None], axis=-1)[:, 0]


def composed_loss(z, labels):
    return -np.take_along_axis(log_softmax(z), labels[:, None], axis=-1)[:, 0]


def softmax_minus_onehot(z, labels):
    grad = np.exp(log_softmax(z))
    grad[np.arange(len(labels)), labels] -= 1
    return grad


class FakeFused(Adapter):
    framework = "fake-fused"
    packages = ("numpy",)
    capabilities = {OP: Capability(fused_loss, dtypes=("float32", "float64"))}

    def version(self):
        return np.__version__

    def loss(self, op, prediction, labels, options, dtype, device):
        out = self.capability(op).implementation(prediction, labels).astype(prediction.dtype)
        return Result(out.astype(np.float64), str(out.dtype), "cpu")

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction", cotangent=None):
        grad = softmax_minus_onehot(prediction, labels)
        if os.environ.get("FAKE_FUSED_FAULT") == "grad" and self.composition == "":
            grad[0] *= prediction.dtype.type(1.01)
        return Result(grad.astype(np.float64), str(grad.dtype), "cpu")

    def composed(self):
        return FakeComposed()


class FakeComposed(FakeFused):
    composition = "log_softmax, then a gather"
    capabilities = {OP: Capability(composed_loss, dtypes=("float32", "float64"))}

    def composed(self):
        return None
