"""A finding written out: a case file with literal inputs (shortest decimals that give the
dtype's values back), ready for `cases/`, and a manifest stub for the divergence it shows."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from conformance.hunt.search import CEILING, Finding
from reference.dtypes import numpy_dtype


def shortest(value: float, dtype: str) -> str:
    """The shortest decimal that the dtype reads back as this value."""
    held = np.asarray(value).astype(numpy_dtype(dtype))
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if np.asarray(float(text)).astype(numpy_dtype(dtype)) == held:
            return text if any(c in text for c in ".en") else text + ".0"
    return repr(float(value))


def literal(array: np.ndarray, dtype: str) -> str:
    """A flow-style YAML array."""
    if array.dtype.kind in "iu":
        return json.dumps(array.tolist())
    if array.ndim == 0:
        return shortest(float(array), dtype)
    return "[" + ", ".join(literal(row, dtype) for row in array) + "]"


def case_name(op: str, dtype: str, quantity: str) -> str:
    return f"hunt-{op.replace('_', '-')}-{quantity.replace('_', '-')}-{dtype}"


def describe(found: Finding) -> str:
    if found.raised:
        return f"raised {found.raised}"
    if found.score >= CEILING:
        return "NaN or an infinity where the reference is a number (or the reverse)"
    return f"its largest error is {found.score:.3g} times the tolerance" + (f" ({found.mode})" if found.mode else "")


def case_file(found: Finding, framework: str, op: str, dtype: str, quantity: str, command: str) -> str:
    name = case_name(op, dtype, quantity)
    prediction = next(k for k in found.inputs if k != "labels")
    when = datetime.date.today().isoformat()
    lines = [
        "schema: 1",
        f"description: Found by `{command}` on {when}.",
        "cases:",
        f"  - name: {name}",
        f"    op: {op}",
        "    description: >",
        f"      The worst input the search found for {framework}: {describe(found)}.",
        "    inputs:",
        f"      {prediction}: {literal(found.inputs[prediction], dtype)}",
        f"      labels: {literal(found.inputs['labels'], dtype)}",
        f"    dtypes: [{dtype}]",
    ]
    if quantity == "loss":
        lines.append("    grad: false")
    return "\n".join(lines) + "\n"


def manifest_stub(found: Finding, framework: str, op: str, dtype: str, quantity: str,
                  package_versions: dict) -> str:
    """An entry to complete (reason, link) if the finding is a divergence to record."""
    observed = "raised " + found.raised if found.raised else json.dumps(
        [float(v) for v in np.ravel(found.actual)] if found.actual is not None else [])
    package, version = next(iter(package_versions.items()), ("PACKAGE", "VERSION"))
    version = version.split("+")[0]  # a range takes no local version (2.13.0+cpu)
    return "\n".join([
        f"  - id: {framework}-{case_name(op, dtype, quantity)}",
        "    match:",
        f"      framework: {framework}",
        f"      case: {case_name(op, dtype, quantity)}",
        f"      quantity: {quantity}",
        f"      dtype: {dtype}",
        f'    versions: "{package}>={version}"',
        "    action: xfail",
        "    expect: " + ("raises" if found.raised else "[inaccurate]  # or nan, inf, finite: what the check shows"),
        f"    observed: {json.dumps(observed)}",
        "    reason: >",
        "      Why the framework differs (its algorithm, the intermediate that loses accuracy).",
        "    link: https://the upstream issue or source line",
    ]) + "\n"


def write(found: Finding, out: Path, framework: str, op: str, dtype: str, quantity: str, command: str,
          package_versions: dict) -> tuple[Path, Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(case_file(found, framework, op, dtype, quantity, command))
    stub = out.with_name(out.stem + ".manifest-stub.yaml")
    stub.write_text(manifest_stub(found, framework, op, dtype, quantity, package_versions))
    return out, stub
