"""What the suite knows of each built-in framework id, in one table.

A framework id names one implementation under test: its adapter ("module:attr", the same
target its `xent_conformance.adapters` entry point names), the modules it imports, the
distributions whose versions results record and manifest ranges name, and the process that
checks it. Keras 3 fixes its backend at import, so each backend has a process with
KERAS_BACKEND set first; a framework whose native libraries cannot share a process with
TensorFlow's gets a process of its own. Plug-ins are not listed here: their adapters say the
same things about themselves, and they run in the main process.
"""
from __future__ import annotations

from dataclasses import dataclass

MAIN_PROCESS = "tensorflow"  # the Keras backend of the process that checks every non-Keras-3 framework


@dataclass(frozen=True)
class Framework:
    id: str
    adapter: str  # "module:attr" of the adapter class
    imports: tuple[str, ...]  # modules it cannot run without
    packages: tuple[str, ...]  # distributions: versions recorded, named by manifest ranges
    keras_backend: str | None = None  # Keras 3 only: KERAS_BACKEND of the process that runs it
    own_process: bool = False  # checked in a process of its own, named by the id

    @property
    def process(self) -> str:
        """The name of the process that checks this framework: a Keras backend, or its own id."""
        if self.own_process:
            return self.id
        return self.keras_backend or MAIN_PROCESS


_KERAS = "conformance.adapters.keras_adapter:"
BUILTIN: dict[str, Framework] = {f.id: f for f in (
    Framework("numpy", "conformance.adapters.numpy_adapter:NumpyAdapter", ("numpy",), ("numpy",)),
    Framework("tensorflow", "conformance.adapters.tensorflow_adapter:TensorflowAdapter", ("tensorflow",),
              ("tensorflow",)),
    Framework("torch", "conformance.adapters.torch_adapter:TorchAdapter", ("torch",), ("torch",)),
    Framework("jax", "conformance.adapters.jax_adapter:JaxAdapter", ("jax", "optax"), ("jax", "jaxlib", "optax")),
    Framework("keras-tensorflow", _KERAS + "KerasOnTensorflow", ("keras", "tensorflow"), ("keras", "tensorflow"),
              "tensorflow"),
    Framework("keras-jax", _KERAS + "KerasOnJax", ("keras", "jax"), ("keras", "jax", "jaxlib"), "jax"),
    Framework("keras-torch", _KERAS + "KerasOnTorch", ("keras", "torch"), ("keras", "torch"), "torch"),
    Framework("keras-numpy", _KERAS + "KerasOnNumpy", ("keras",), ("keras", "numpy"), "numpy"),
    Framework("tf_keras", "conformance.adapters.tf_keras_adapter:TfKerasAdapter", ("tf_keras",),
              ("tf-keras", "tensorflow")),
    Framework("onnxruntime", "conformance.adapters.onnxruntime_adapter:OnnxRuntimeAdapter",
              ("onnxruntime", "onnx"), ("onnxruntime", "onnx")),
    Framework("mlx", "conformance.adapters.mlx_adapter:MlxAdapter", ("mlx",), ("mlx",)),
    # libpaddle.so crashes (SIGSEGV) when it is loaded after TensorFlow's libraries
    Framework("paddle", "conformance.adapters.paddle_adapter:PaddleAdapter", ("paddle",), ("paddlepaddle",),
              own_process=True),
    Framework("tinygrad", "conformance.adapters.tinygrad_adapter:TinygradAdapter", ("tinygrad",), ("tinygrad",)),
)}
BUILTIN_IDS: tuple[str, ...] = tuple(BUILTIN)
KERAS_BACKENDS: tuple[str, ...] = tuple(f.keras_backend for f in BUILTIN.values() if f.keras_backend)
OWN_PROCESSES: tuple[str, ...] = tuple(f.id for f in BUILTIN.values() if f.own_process)
PROCESSES: tuple[str, ...] = KERAS_BACKENDS + OWN_PROCESSES  # the main one first
# Processes whose checks outweigh starting more pytest-xdist workers (each re-imports the
# frameworks and re-collects the cases, some 5 s here): those where XLA compiles for every new
# shape. The others run in one worker (keras-torch: 19 s in one, 26 s in two, on 2 cores).
PARALLEL_PROCESSES: tuple[str, ...] = (MAIN_PROCESS, "jax")
PROCESS_VARIABLE = "XENT_CONFORMANCE_PROCESS"  # names a process of its own; else KERAS_BACKEND names it
# Words a case name may not contain, so that `pytest -k NAME` selects by framework only.
RESERVED_WORDS = ("numpy", "tensorflow", "torch", "jax", "keras", "onnxruntime", "mlx", "paddle", "tinygrad")


def order_key(framework_id: str) -> tuple:
    """Built-in ids in table order, then any other id alphabetically: none is ever dropped."""
    if framework_id in BUILTIN:
        return (0, BUILTIN_IDS.index(framework_id), "")
    return (1, 0, str(framework_id))


def process_of(framework_id: str) -> str:
    """The name of the process that checks framework_id (plug-ins: the main one)."""
    known = BUILTIN.get(framework_id)
    return known.process if known else MAIN_PROCESS


def ids_in_process(process: str, ids) -> list[str]:
    """The framework ids among ids that the named process checks."""
    return [f for f in ids if process_of(f) == process]


def process_environment(process: str) -> dict[str, str]:
    """The variables that make a process the named one: its Keras backend (a process of its
    own keeps the main backend and never imports Keras 3), and the process name."""
    if process in OWN_PROCESSES:
        return {"KERAS_BACKEND": MAIN_PROCESS, PROCESS_VARIABLE: process}
    return {"KERAS_BACKEND": process, PROCESS_VARIABLE: ""}


def process_label(process: str) -> str:
    """How results files and progress lines name a process."""
    return process if process in OWN_PROCESSES else "keras-" + process
