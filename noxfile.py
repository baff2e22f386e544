"""nox sessions: conformance (the matrix), tests (the suite's own), hunt, report, benchmark.

    nox -s conformance                         # the matrix; results in results/
    nox -s conformance -- --require all        # a missing framework fails instead of skipping
    nox -s conformance -- --constraints candidates.txt   # try candidate framework versions
    nox -s tests                               # the suite's own tests
    nox -s hunt                                # a short search for the worst input (see README)
    nox -s kernels                             # fused LLM kernels (Liger-Kernel, ...) through the plug-in
    nox -s sharded                             # sharded cross-entropy (DTensor, JAX, Megatron, DeepSpeed, Liger)
    nox -s lint                                # ruff and mypy
"""
import nox

nox.options.sessions = ["conformance", "tests"]
nox.options.reuse_existing_virtualenvs = True

BASELINE_CONSTRAINTS = "constraints.txt"


def _constraints(posargs):
    """(constraints file, remaining arguments)."""
    args = list(posargs)
    if "--constraints" in args:
        i = args.index("--constraints")
        path = args[i + 1]
        return path, args[:i] + args[i + 2:]
    return BASELINE_CONSTRAINTS, args


@nox.session
def conformance(session):
    """Every framework, Keras 3 on each backend and PaddlePaddle each in a process of its own,
    merged into results/conformance.json."""
    constraints, args = _constraints(session.posargs)
    session.log(f"installing TensorFlow, tf-keras, Keras, PyTorch, JAX, optax, ONNX Runtime, MLX, "
                f"PaddlePaddle and tinygrad as pinned in {constraints} "
                "(about 4 GB; minutes on a fresh machine, seconds once the session exists; `nox -v` shows pip)")
    # The example plug-in is installed as a user would install one, and checked with the rest.
    session.install("-c", constraints, "-e", ".[all,test]", "./examples/xent-example-plugin")
    session.run("python", "-m", "conformance", "run", *args)


@nox.session
def tests(session):
    """The suite's own tests (case loader, reference, tolerance model, adapters, CLI, pytest
    plugin), then the package installed from a wheel into a fresh environment, then the HTML
    report in headless Chromium (skipped, and counted, where Chromium is not installed)."""
    session.install("-c", BASELINE_CONSTRAINTS, "-e", ".[test]")
    session.run("pytest", "tests/unit", "-q", "-p", "no:cacheprovider", "-n", "2", *session.posargs)
    session.run("pytest", "tests/package", "-q", "-p", "no:cacheprovider", *session.posargs)
    session.run("pytest", "tests/browser", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def kernels(session):
    """Fused cross-entropy kernels of LLM training through the plug-in plugins/xent-kernels
    (framework ids liger and cce), in a process of their own and kept out of the main matrix: natively
    on CUDA, through Triton's interpreter on the CPU (slow, so the cases are small). Results in
    results/kernels/conformance.json.

        nox -s kernels                             # every kernel, required (a missing one fails)
        nox -s kernels -- --device cuda            # CUDA only
    """
    constraints, args = _constraints(session.posargs)
    session.install("-c", constraints, "-e", ".[torch,test]", "./plugins/xent-kernels")
    required = [arg for kernel in KERNELS for arg in ("--framework", kernel, "--require", kernel)]
    session.run("python", "-m", "conformance", "run", *required, "--results-dir", "results/kernels",
                "--history", "", *args)


KERNELS = ("liger", "cce")  # the framework ids of plugins/xent-kernels


@nox.session
def sharded(session):
    """Sharded cross-entropy: the cases that name `layouts`, their inputs split across
    torch.distributed ranks (gloo on the CPU, NCCL on CUDA) of pools started once and reused, or
    across JAX's devices. PyTorch DTensor, JAX (optax under NamedSharding, shard_map),
    Megatron-core and DeepSpeed through plugins/xent-sharded, Liger-Kernel's vocab-parallel loss
    through plugins/xent-kernels. Results in results/sharded/conformance.json.

        nox -s sharded                             # every one, required (a missing one fails)
        nox -s sharded -- --device cpu
    """
    constraints, args = _constraints(session.posargs)
    session.install("-c", constraints, "-e", ".[torch,jax,test]", "./plugins/xent-sharded[jax,deepspeed]",
                    "./plugins/xent-kernels")
    # megatron-core declares Python >= 3.12 but imports on 3.11 (constraints.txt)
    session.install("-c", constraints, "--ignore-requires-python", "--no-deps", "megatron-core")
    required = [arg for framework in SHARDED for arg in ("--framework", framework, "--require", framework)]
    where_cuda = [arg for framework in SHARDED_ON_CUDA for arg in ("--framework", framework)]
    session.run("python", "-m", "conformance", "run", *required, *where_cuda, "--results-dir", "results/sharded",
                "--history", "", *args)


# the framework ids of plugins/xent-sharded, and of plugins/xent-kernels' vocab-parallel loss
SHARDED = ("torch-dtensor", "jax-sharded", "megatron-core", "deepspeed", "liger-vp", "liger-vp-megatron")
# run, not required: TransformerEngine needs a GPU to import (on the CPU its checks say so, as not offered)
SHARDED_ON_CUDA = ("transformer-engine",)


@nox.session
def hunt(session):
    """A search for the worst input of one framework, op and dtype (`xent-conformance hunt`);
    by default a short one on PyTorch's sigmoid cross-entropy, written to results/.

        nox -s hunt -- --framework jax --op sparse_softmax_cross_entropy --dtype bfloat16 --budget 300
    """
    args = session.posargs or ["--framework", "torch", "--op", "sigmoid_cross_entropy", "--dtype", "float32",
                               "--budget", "20", "--out", "results/hunt-torch-sigmoid_cross_entropy-float32.yaml"]
    session.install("-c", BASELINE_CONSTRAINTS, "-e", ".[all,hunt]")
    session.run("python", "-m", "conformance", "hunt", *args)


@nox.session
def lint(session):
    """ruff (style and likely bugs) over the tree and mypy over conformance/ and reference/, as
    configured in pyproject.toml: every function of the public interfaces (adapters/api.py, core/,
    cases/, reference/) annotated."""
    session.install("-c", BASELINE_CONSTRAINTS, "-e", ".", *LINTERS)
    session.run("ruff", "check", ".")
    session.run("mypy")


LINTERS = ("ruff==0.17.6", "mypy==2.4.1", "types-PyYAML==6.0.12.20261122")


@nox.session
def report(session):
    """Render results files as markdown and HTML, each beside its results (report.md, report.html).

        nox -s report                                     # results/conformance.json
        nox -s report -- results/kernels/conformance.json
    """
    session.install("-c", BASELINE_CONSTRAINTS, "-e", ".[report]")
    for path in session.posargs or ["results/conformance.json"]:
        folder = path.rpartition("/")[0] or "."
        for fmt in ("md", "html"):
            session.run("python", "-m", "conformance", "report", path, "--format", fmt, "-o", f"{folder}/report.{fmt}")


@nox.session
def benchmark(session):
    """Fused cross-entropy kernels against the naive composition, beside this machine's copy
    bandwidth: one pytest-benchmark process per framework (Keras 3 one per backend), never
    xdist; results/benchmarks.md and results/benchmarks.png.

        nox -s benchmark                               # quick profile: a few minutes on a CPU
        nox -s benchmark -- --profile full             # about 1 GiB of logits (4 GiB on a GPU)
        nox -s benchmark -- --frameworks torch,jax --sizes 8192x32000,8192x128256
        nox -s benchmark -- --benchmark-save=baseline  # then --benchmark-compare --benchmark-compare-fail=median:10%
    """
    constraints, args = _constraints(session.posargs)
    session.install("-c", constraints, "-e", ".[all,benchmark,report]")
    session.run("python", "-m", "conformance.bench.run", *args)
