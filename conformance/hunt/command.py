"""`xent-conformance hunt --framework F --op OP --dtype D [--quantity Q] [--budget S] [--out FILE]`.

Exit 0 with the worst input written out, whatever it scores (a search reports, the matrix
gates); exit 2 with one line for an unknown framework, op, dtype or quantity, a budget that
is not a positive number, or a framework that is not installed or does not offer the op.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

from conformance import adapters, frameworks
from conformance.adapters.api import NotOffered
from reference.dtypes import FLOAT_DTYPES
from reference.registry import OPS


class HuntInputError(Exception):
    pass


def _budget(text) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise HuntInputError(f"--budget must be a positive number of seconds, got {text!r}")
    return value


def _adapter(framework: str):
    known = adapters.registry().known_ids()
    if framework not in known:
        raise HuntInputError(f"unknown framework id {framework!r} (known: {', '.join(known)})")
    if framework in frameworks.BUILTIN and frameworks.BUILTIN[framework].keras_backend:
        os.environ["KERAS_BACKEND"] = frameworks.BUILTIN[framework].keras_backend  # before keras is imported
    try:
        return adapters.load(framework)
    except adapters.AdapterError as exc:
        raise HuntInputError(str(exc)) from None
    except adapters.Unavailable as exc:
        raise HuntInputError(f"{framework} is not installed here: {exc}") from None


def hunt(framework: str, op: str, dtype: str, quantity: str, budget, seed: int, out: str | None) -> int:
    try:
        from conformance.hunt import search as searching
    except ImportError as exc:
        raise HuntInputError(f"hunt needs hypothesis ({exc}): pip install 'xent-conformance[hunt]'") from None

    if op not in OPS:
        raise HuntInputError(f"unknown op {op!r} (known: {', '.join(OPS)})")
    if OPS[op].head:
        raise HuntInputError(f"the hunt draws logits, not the inputs of {op}: hunt {OPS[op].head} on its logits")
    if dtype not in FLOAT_DTYPES:
        raise HuntInputError(f"unknown dtype {dtype!r} (known: {', '.join(FLOAT_DTYPES)})")
    if quantity not in searching.QUANTITIES:
        raise HuntInputError(f"unknown quantity {quantity!r} (known: {', '.join(searching.QUANTITIES)})")
    seconds = _budget(budget)
    adapter = _adapter(framework)
    try:
        adapter.check_offered(op, dtype, "cpu", quantity)
    except NotOffered as exc:
        raise HuntInputError(f"nothing to search: {exc}") from None

    from conformance.cases import CaseError, load_case_file
    from conformance.hunt import output

    started = time.monotonic()
    found, tried = searching.search(adapter, framework, op, dtype, quantity, seconds * 0.8, seed)
    if not found.inputs:
        raise HuntInputError(f"no input could be tried within {seconds:g} s")
    per_mode = ", ".join(f"{n} in {mode}" for mode, n in tried.items())
    before = found.score
    found = searching.shrink(adapter, framework, op, dtype, quantity, found, max(seconds * 0.2, 1.0))
    path = Path(out or f"hunt-{framework}-{op}-{dtype}.yaml")
    command = f"xent-conformance hunt --framework {framework} --op {op} --dtype {dtype}" + (
        f" --quantity {quantity}" if quantity != "loss" else "") + f" --budget {seconds:g} --seed {seed}"
    try:
        case_path, stub_path = output.write(found, path, framework, op, dtype, quantity, command,
                                            adapter.package_versions())
    except OSError as exc:
        raise HuntInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        load_case_file(case_path)  # what it wrote is a case the suite reads
    except CaseError as exc:
        raise HuntInputError(f"the case written is not valid: {exc}") from None
    verdict = "fails" if found.score > 1 else "passes"
    print(f"{framework} {op} {quantity} {dtype}: inputs tried {per_mode}, {time.monotonic() - started:.1f} s; "
          f"the worst {verdict}: {output.describe(found)} (before shrinking {before:.3g})")
    print(f"case: {case_path}")
    print(f"manifest stub: {stub_path} (if it is a divergence to record: complete it, add it to the manifest)")
    return 0
