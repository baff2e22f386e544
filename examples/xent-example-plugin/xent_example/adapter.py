"""The adapter that plugs the kernel into xent-conformance (see docs/adapters.md there)."""
import numpy as np

from conformance.adapters.api import (Adapter, BackwardProbe, Call, Capability, NotOffered, Result,
                                      results_in_modes)
from xent_example import kernel


class ExampleKernelAdapter(Adapter):
    framework = "example-kernel"  # a plug-in's id is its own, never a built-in one
    packages = ("xent-example-plugin", "numpy")
    capabilities = {
        "sparse_softmax_cross_entropy": Capability(
            implementation=kernel.forward,
            variant="exact",  # the mathematics: logsumexp(z) - z[label]
            options={"ignore_index", "z_loss"},  # beyond reduction and axis
            reductions=("none", "sum", "mean"),
            dtypes=("float32", "float64"),
            modes=("eager", "chunked"),  # the whole batch at once, or its rows in blocks (forward_chunked)
            differentiable=True,  # through the kernel's own backward
        ),
        "linear_cross_entropy": Capability(  # the same loss on an LM head's logits, fused with it
            implementation=kernel.linear_forward,
            variant="megatron_smoothing",  # label smoothing as Megatron-LM spreads it
            options={"ignore_index", "z_loss", "label_smoothing", "linear_bias"},  # and linear_weight, always
            reductions=("none", "sum", "mean"),
            dtypes=("float32", "float64"),
        ),
    }
    LINEAR_INPUTS = {"prediction": 0, "linear_weight": 1, "linear_bias": 2}  # linear_backward's outputs

    @staticmethod
    def _classes_last(logits, options):
        return np.moveaxis(logits, options.get("axis", -1), -1)

    @staticmethod
    def _linear(prediction, labels, options):
        """linear_forward's and linear_backward's arguments from the suite's: the head's tensors
        arrive among the options."""
        return (prediction, options["linear_weight"], options.get("linear_bias"), labels,
                options.get("reduction", "none"), options.get("ignore_index"), options.get("z_loss") or 0.0,
                options.get("label_smoothing") or 0.0)

    def loss(self, op, prediction, labels, options, dtype, device):
        self.capability(op)  # only declared ops reach here; this names the op if not
        if op == "linear_cross_entropy":
            out = np.asarray(kernel.linear_forward(*self._linear(prediction, labels, options)))
            return Result(out.astype(np.float64), str(out.dtype), "cpu")
        logits = self._classes_last(prediction, options)

        def in_mode(mode):
            forward = kernel.forward_chunked if mode == "chunked" else kernel.forward
            losses = forward(logits, labels, options.get("ignore_index"), options.get("z_loss") or 0.0)
            out = np.asarray(kernel.reduce(losses, labels, options.get("reduction", "none"),
                                           options.get("ignore_index")))
            return Result(out.astype(np.float64), str(out.dtype), "cpu")
        return results_in_modes(self.capability(op).modes, in_mode)

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        self.capability(op)
        if op == "linear_cross_entropy":
            raise NotOffered("the linear head has no forward mode here")
        out = np.asarray(kernel.forward_derivative(
            self._classes_last(prediction, options), labels,
            np.moveaxis(np.asarray(direction), options.get("axis", -1), -1), options.get("reduction", "none"),
            options.get("ignore_index"), options.get("z_loss") or 0.0))
        return self._every_mode(op, Result(out.astype(np.float64), str(out.dtype), "cpu"))

    def _every_mode(self, op, result):
        """A derivative's Result for each mode: the chunked mode chunks the forward's rows only,
        its derivatives are the whole-batch kernel's."""
        return results_in_modes(self.capability(op).modes, lambda mode: Result(result.values, result.dtype, "cpu"))

    def gradient(self, call: Call) -> Result:
        self.capability(call.op)
        if call.op == "linear_cross_entropy":
            grads = kernel.linear_backward(*self._linear(call.prediction, call.labels, call.options),
                                           1.0 if call.cotangent is None else call.cotangent)
            grad = grads[self.LINEAR_INPUTS[call.wrt]]
            return Result(grad.astype(np.float64), str(grad.dtype), "cpu")
        if call.wrt != "prediction":
            raise NotOffered("integer labels have no gradient")
        axis = call.options.get("axis", -1)
        options = call.options
        grad = kernel.backward(self._classes_last(call.prediction, options), call.labels,
                               options.get("reduction", "none"), options.get("ignore_index"),
                               options.get("z_loss") or 0.0, 1.0 if call.cotangent is None else call.cotangent)
        grad = np.moveaxis(grad, -1, axis)
        return self._every_mode(call.op, Result(grad.astype(np.float64), str(grad.dtype), "cpu"))

    def backward_probe(self, op, prediction, labels, options, dtype, device, cotangent):
        self.capability(op)
        if op == "linear_cross_entropy":
            raise NotOffered("the linear head keeps no training step of its own")
        logits = self._classes_last(prediction, options)  # a view: what the kernel writes shows in prediction
        step = kernel.TrainingStep(logits, labels, options.get("reduction", "none"), options.get("ignore_index"),
                                   options.get("z_loss") or 0.0)
        axis = options.get("axis", -1)
        results = []
        for _ in range(2):
            grad = step.backward(cotangent)  # read out (copied to float64) before the next backward
            results.append(Result(np.moveaxis(grad, -1, axis).astype(np.float64), str(grad.dtype), "cpu"))
        return BackwardProbe(*results, prediction, labels)
