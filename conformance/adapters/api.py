"""The public adapter API: how any cross-entropy implementation is plugged into the suite.

An adapter is one class per framework (or kernel). It declares, per canonical op, one
`Capability` (the way an OpInfo declares an op): the reference variant it follows, the
options, reductions, dtypes per device and modes it offers, whether it differentiates, and
the implementation that computes it. The suite dispatches through that declaration only:
an undeclared op, option, reduction, dtype or quantity is `not-offered` before the adapter
is called, and a declaration the suite cannot honour is refused when the adapter loads.

The adapter receives NumPy inputs already cast to the dtype under test (integer labels as
int64), runs its own function on the requested device, and returns the result as float64
together with the dtype and device the framework really produced, so that a silent downcast
or a tensor that never reached the GPU is seen, not assumed. See docs/adapters.md.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from conformance.adapters.kernel_modules import builtin_kernels
from conformance.core import quantities as _quantities
from reference.dtypes import FLOAT_DTYPES, numpy_dtype

# Options every capability takes without declaring them: how the losses are reduced, which
# axis holds the classes (for ops that have one), and linear_cross_entropy's weight: an op's
# further tensors reach the adapter among the options, as arrays of the dtype under test
# (linear_bias, which a case may leave out, is declared by the capabilities that take it).
BASE_OPTIONS = ("reduction", "axis", "linear_weight")
BASIC_REDUCTIONS = ("none", "sum", "mean")
# The quantities of a plain loss or grad call, and the properties of a training step, checked on
# every adapter that offers backward_probe (the table of every quantity: conformance/core/quantities.py).
QUANTITIES = tuple(q.name for q in _quantities.QUANTITIES.values()
                   if q.call in (_quantities.call_loss, _quantities.call_grad))
PROBE_QUANTITIES = _quantities.PROBES


class NotOffered(Exception):
    """The framework has no public function for this op, option, dtype, device or quantity."""


class ModeNotSelected(NotOffered):
    """Every mode that computes this call was left out of the run (`--modes`)."""


class RaisedInMode(Exception):
    """The framework raised while running one of its modes (torch.compile, say): the suite
    judges the raise by the manifest entries about that mode. Kept for adapters written before
    results_in_modes ran every mode; a Result with `raised` set is the way to say it now."""

    def __init__(self, mode: str, error: BaseException) -> None:
        super().__init__(f"{mode}: {type(error).__name__}: {error}")
        self.mode, self.error = mode, error


class RankFailed(Exception):
    """A rank of a sharded computation died or did not answer (the message names it): the
    check is an error, not a raise of the framework's."""


class Unavailable(Exception):
    """The framework cannot be imported or started in this process."""


@dataclass(frozen=True)
class Capability:
    """What an adapter offers for one canonical op.

    implementation: the adapter's own handle for the call (usually a function); the suite
        never calls it, it only requires one, so a declared op cannot fall through to
        another op's code.
    variant: the reference variant (reference/ops) whose semantics this implementation follows.
    options: option names beyond reduction and axis that it honours (label_smoothing, weight,
        sample_weight, pos_weight, ignore_index, half, ...); any other option is not-offered.
    reductions: which of none, sum, mean, weighted_mean it computes.
    dtypes: the float dtypes it computes, one tuple for every device or a mapping device -> tuple.
    modes: the ways one call runs (eager, jit, compile, ...); a Result must carry each of them.
    differentiable: gradients are offered through the framework's own autodiff.
    layouts: the axes (vocab, batch, sequence) it takes its inputs split on across ranks; a
        call with a layout receives `layout=` (conformance.sharded.layouts.Layout).
    """

    implementation: Any
    variant: str = "exact"
    options: Collection[str] = frozenset()  # frozen to a frozenset
    reductions: Sequence[str] = BASIC_REDUCTIONS  # frozen to a tuple
    dtypes: tuple[str, ...] | Mapping[str, tuple[str, ...]] = FLOAT_DTYPES
    modes: Sequence[str] = ("eager",)  # frozen to a tuple
    differentiable: bool = True
    layouts: Collection[str] = frozenset()  # frozen to a frozenset

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", frozenset(self.options))
        object.__setattr__(self, "layouts", frozenset(self.layouts))
        object.__setattr__(self, "reductions", tuple(self.reductions))
        object.__setattr__(self, "modes", tuple(self.modes))

    def dtypes_on(self, device: str) -> tuple[str, ...]:
        if isinstance(self.dtypes, Mapping):
            return tuple(self.dtypes.get(device, ()))
        return tuple(self.dtypes)


@dataclass
class Result:
    """One computed value: float64 values, and what the framework really produced; or, for one
    mode of a framework that runs several ways, the exception that mode raised (`raised`), so
    that each mode is judged on its own."""

    values: np.ndarray | None  # float64; None where this mode raised
    dtype: str  # the dtype the framework returned
    device: str  # cpu or cuda: where the result was computed
    mode: str = ""  # how it ran, where a framework has several ways (JAX: jit, eager)
    others: list[Result] = field(default_factory=list)  # the same call run the other ways: Results
    raised: BaseException | None = None  # what this mode raised instead of returning
    # inputs split across ranks, each rank holding the whole result: each rank's own value, in
    # rank order (rank_agreement compares them); None where the ranks hold parts of it
    per_rank: list[np.ndarray] | None = None
    # the bytes the ranks' collectives carried in one forward and backward, by collective
    # (recorded with the check, beside its floor); None where nothing was counted
    communication: dict[str, Any] | None = None

    def all_modes(self) -> list[Result]:
        return [self, *self.others]


@dataclass
class BackwardProbe:
    """One forward and two backward passes of the same graph (retain_graph), as a training step
    with gradient accumulation or a second optimizer pass runs them, and the inputs read back
    from the framework's own tensors afterwards: a kernel that stores its gradient into the
    logits, or scales a saved gradient in place, shows here and nowhere else."""

    first: Result  # the vector-Jacobian product of the first backward
    second: Result  # the same product from the second backward of the same forward
    prediction_after: np.ndarray  # the prediction as the framework's tensor holds it afterwards
    labels_after: np.ndarray  # likewise the labels
    tensors_after: dict[str, np.ndarray] = field(default_factory=dict)  # an op's further tensors (linear_weight, ...)


@dataclass(frozen=True)
class Call:
    """One derivative asked of an adapter: the op, its inputs as the dtype under test holds them
    (NumPy; integer labels as int64), the case's options (further tensors among them), the
    dtype and device, the input it is taken with respect to, and the cotangent of a
    vector-Jacobian product (None: the gradient of sum(loss))."""

    op: str
    prediction: np.ndarray
    labels: np.ndarray
    options: Mapping[str, Any]
    dtype: str
    device: str
    wrt: str = "prediction"
    cotangent: np.ndarray | None = None


def _overrides(adapter: "Adapter", method: str) -> bool:
    """Whether the adapter's class defines its own `method` rather than Adapter's."""
    return getattr(type(adapter), method, None) is not getattr(Adapter, method)


class Adapter:
    """Base class of every adapter. Subclasses set `framework`, `capabilities` and `packages`,
    and implement `loss` and (where a capability is differentiable) `gradient`. A built-in adapter
    writes `framework`, `packages`, `keras_backend` and `own_process` as literals in its class
    body: the suite reads them before the framework is imported (conformance/frameworks.py)."""

    framework: str = ""
    capabilities: Mapping[str, Capability] = {}
    packages: tuple[str, ...] = ()  # distributions whose versions the results record and the manifest names
    keras_backend: str = ""  # Keras 3 only: checked in the process whose KERAS_BACKEND is this
    own_process: bool = False  # checked in a process of its own (native libraries that clash)
    # layout axes the adapter takes (a literal: read before import, frameworks.layouts_of); only
    # frameworks that declare one get a case's layout checks
    layouts: tuple[str, ...] = ()

    def version(self) -> str:
        """The framework's version: the installed version of the first of `packages`."""
        return self.package_versions().get(self.packages[0], "unknown") if self.packages else "unknown"

    def package_versions(self) -> dict[str, str]:
        """Installed version of each package in `packages` (absent ones left out); read once
        per adapter, since each lookup scans the installed distributions (milliseconds, asked
        by every check)."""
        found = getattr(self, "_installed_versions", None)
        if found is None:
            found = {}
            for name in self.packages:
                try:
                    found[name] = metadata.version(name)
                except metadata.PackageNotFoundError:
                    pass
            self._installed_versions = found
        return dict(found)

    def devices(self) -> tuple[str, ...]:
        return ("cpu",)

    def environment(self) -> dict[str, Any]:
        """What the results file records about this framework."""
        return {"version": self.version(), "packages": self.package_versions(), "devices": list(self.devices())}

    def capability(self, op: str) -> Capability:
        """The declaration for op; NotOffered when the adapter declares none."""
        if op not in self.capabilities:
            raise NotOffered(f"{self.framework} has no public function for {op}")
        return self.capabilities[op]

    def check_offered(self, op: str, dtype: str, device: str, quantity: str,
                      options: Mapping[str, Any] | None = None) -> Capability:
        """The capability that covers this call, or NotOffered saying what is missing."""
        capability = self.capability(op)
        if dtype not in capability.dtypes_on(device):
            raise NotOffered(f"{self.framework} does not compute {op} in {dtype} on {device}")
        if _quantities.quantity(quantity).gradient is not None and not capability.differentiable:
            raise NotOffered(f"{self.framework} does not differentiate {op}")
        if not selected_modes(capability.modes):
            raise ModeNotSelected(f"{self.framework} computes {op} in modes {', '.join(capability.modes)}, "
                                  f"none of them selected")
        options = options or {}
        reduction = options.get("reduction", "none")
        if reduction not in capability.reductions:
            raise NotOffered(f"{self.framework} {op} has no {reduction} reduction")
        for name, value in options.items():
            if name not in BASE_OPTIONS and value is not None and value is not False and name not in capability.options:
                raise NotOffered(f"{self.framework} {op} has no {name} option")
        return capability

    def loss(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str) -> Result:
        raise NotImplementedError

    def gradient(self, call: Call) -> Result:
        """d sum(loss) / d call.prediction, or / d call.labels (call.wrt="labels"), or / d one of
        the op's further tensors (wrt="linear_weight"). With call.cotangent (one value per loss,
        reduction none), the vector-Jacobian product sum(cotangent * loss)'s gradient, as a
        training step's backward computes it; raise NotOffered where there is none.

        Adapters override this. One written before Call overrides `grad` instead, which this
        calls (an old `grad` that takes no `cotangent` is not offered those checks)."""
        if _overrides(self, "grad"):
            extra = {}
            if call.cotangent is not None:
                if "cotangent" not in inspect.signature(self.grad).parameters:
                    raise NotOffered(f"{self.framework} computes no vector-Jacobian product")
                extra["cotangent"] = call.cotangent
            return self.grad(call.op, call.prediction, call.labels, call.options, call.dtype, call.device,
                             wrt=call.wrt, **extra)
        raise NotOffered(f"{self.framework} has no automatic differentiation")

    def grad(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, wrt: str = "prediction", cotangent: np.ndarray | None = None) -> Result:
        """The positional form callers use: the Call made of these arguments, to `gradient`."""
        if _overrides(self, "gradient"):
            return self.gradient(Call(op, prediction, labels, options, dtype, device, wrt, cotangent))
        raise NotOffered(f"{self.framework} has no automatic differentiation")

    def jvp(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
            device: str, direction: np.ndarray) -> Result:
        """The forward-mode derivative of the loss (as reduced) along direction, one value per
        prediction element (float64 values the dtype holds), through the framework's forward mode."""
        raise NotOffered(f"{self.framework} has no forward-mode derivative")

    def backward_probe(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any],
                       dtype: str, device: str, cotangent: np.ndarray) -> BackwardProbe:
        """Forward once on tensors made from prediction and labels, backward twice with the
        cotangent (float64 values the dtype holds, one per loss) keeping the graph, and read the
        input tensors back. The suite hands over copies, so write nothing back into them
        yourself: the tensors must be the ones the kernel saw (on the CPU they may share the
        copies' memory). Offered by adapters whose framework has mutable tensors and autograd."""
        raise NotOffered(f"{self.framework} offers no backward probe (retained graph, inputs read back)")

    def composed(self) -> "Adapter | None":
        """The same framework computing softmax cross-entropy from its public building blocks
        (log_softmax, then nll_loss or a gather; -sum y log_softmax for dense labels), with the
        same modes and autodiff: an Adapter whose `composition` says how. The relational checks
        compare it with the fused functions mode by mode. None where there is no such composition.

        By default: a new instance of the subclass of this class, in its module, that sets
        `composition` (class TorchComposed(TorchAdapter): composition = "..."); a composition
        has none of its own."""
        if self.composition:
            return None
        for subclass in type(self).__subclasses__():
            if subclass.__module__ == type(self).__module__ and subclass.__dict__.get("composition"):
                return subclass()
        return None

    composition: str = ""  # on a composed adapter: the building blocks, in a line

    def kernels(self) -> Mapping[str, Any]:
        """Benchmark kernels: implementation name ("fused", "naive", "fused-xla", ...) ->
        conformance.bench.contract.BenchKernel, what `nox -s benchmark` times for this framework.

        A BenchKernel has a kind (fused or naive: the report compares them per framework), a
        one-line description, and build(problem) -> Timed: the framework's call on the
        problem's inputs (logits already rounded to the dtype, int64 labels, the device, the
        mode: fwd for the per-sample loss, fwdbwd for it and d sum(loss) / d logits through the
        framework's autodiff), compiled and called once, whose call() runs one evaluation and
        waits for the device. build raises NotOffered, Unavailable, contract.NoDevice or
        contract.CompileFailed where the kernel cannot run; the benchmark is then skipped with
        that reason. Build kernels from the adapter's own conversion, device and autodiff
        helpers. See docs/benchmarks.md.

        By default: a built-in adapter's kernels from its benchmark module, found by name
        (conformance/adapters/torch_adapter.py -> conformance/bench/builtin/torch_kernels.py,
        whose kernels(adapter) builds them), so that an adapter module never imports the bench
        package; for any other adapter none, and the framework is counted as not-offered.
        """
        return builtin_kernels(self)


_SELECTED_MODES: frozenset[str] | None = None  # None: every mode an adapter declares


def select_modes(modes: Iterable[str] | None) -> None:
    """Run only these modes (`--modes eager`), in every adapter of this process; None: all."""
    global _SELECTED_MODES
    _SELECTED_MODES = None if modes is None else frozenset(modes)


def selected_modes(modes: Iterable[str]) -> tuple[str, ...]:
    """The declared modes this process runs, in their declared order."""
    return tuple(m for m in modes if _SELECTED_MODES is None or m in _SELECTED_MODES)


def results_in_modes(modes: Iterable[str], compute: Callable[[str], Result]) -> Result:
    """compute(mode) -> that mode's Result, for each selected mode: the first Result, carrying
    the others (Result.others). Every mode runs whatever another did: a mode that raises gets a
    Result holding the exception (Result.raised), so the suite judges each mode on its own (a
    compiled mode that accepts input its eager mode refuses is a finding, and the reverse).
    NotOffered still ends the call: the framework has no such function at all; so does
    RankFailed: a rank that died or hung says nothing of the framework."""
    results = []
    for mode in selected_modes(modes):
        try:
            result = compute(mode)
        except (NotOffered, RankFailed):
            raise
        except Exception as exc:  # noqa: BLE001 - the runner judges it, mode by mode
            result = Result(None, "", "", raised=exc)
        result.mode = mode
        results.append(result)
    if not results:
        raise ModeNotSelected(f"none of the modes {', '.join(modes)} is selected")
    results[0].others = results[1:]
    return results[0]


def elementwise_reduce(values: Any, reduction: str, total: Callable[[Any], Any], mean: Callable[[Any], Any]) -> Any:
    """Apply a canonical reduction with the framework's own sum and mean."""
    if reduction == "sum":
        return total(values)
    if reduction == "mean":
        return mean(values)
    return values


def as_float(array: npt.ArrayLike) -> np.ndarray:
    """NumPy input for a framework that takes float32/float64 and casts itself (bfloat16)."""
    array = np.asarray(array)
    if array.dtype == numpy_dtype("bfloat16") or array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def move_class_axis(ndim: int, axis: int) -> list[int]:
    """Axis order that puts the class axis second, where PyTorch wants it."""
    axis %= ndim
    order = list(range(ndim))
    order.insert(1, order.pop(axis))
    return order


def options_key(options: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable key equal exactly when two options dicts hold equal values (arrays by dtype,
    shape and bytes): for caching a compiled function per op and options."""
    def frozen(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return ("array", value.dtype.str, value.shape, value.tobytes())
        if isinstance(value, (list, tuple)):
            return ("sequence", tuple(frozen(item) for item in value))
        if isinstance(value, dict):
            return ("dict", options_key(value))
        return value

    return tuple(sorted(((str(name), frozen(value)) for name, value in options.items()), key=lambda pair: pair[0]))
