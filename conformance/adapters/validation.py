"""Refusing an adapter declaration the suite cannot honour, when the adapter loads.

Every capability must name a canonical op, a variant of that op, options that op takes,
known reductions, dtypes and devices, at least one mode, and an implementation. Anything
else is an AdapterError whose one line names the adapter, the op and the key.
"""
from __future__ import annotations

import re
from typing import Mapping

from conformance.adapters.api import BASE_OPTIONS, Adapter, Capability
from reference.dtypes import FLOAT_DTYPES
from reference.registry import OPS, REDUCTIONS, SHARED_OPTIONS

DEVICES = ("cpu", "cuda")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class AdapterError(Exception):
    """An adapter that cannot be used: str() is one line naming the adapter and its origin."""


def validate(adapter: object, where: str) -> None:
    if not isinstance(adapter, Adapter):
        raise AdapterError(f"{where}: {type(adapter).__name__} is not a conformance.adapters.api.Adapter")
    framework = getattr(adapter, "framework", "")
    if not isinstance(framework, str) or not _ID.match(framework):
        raise AdapterError(f"{where}: framework id {framework!r} must be lower-case letters, digits, '-', '_' or '.'")
    capabilities = adapter.capabilities
    if not isinstance(capabilities, Mapping) or not capabilities:
        raise AdapterError(f"{where}: capabilities must map at least one canonical op to a Capability")
    for op, capability in capabilities.items():
        problem = _capability_problem(op, capability)
        if problem:
            raise AdapterError(f"{where}: {framework} {op}: {problem}")


def _capability_problem(op: str, capability: object) -> str:
    if op not in OPS:
        return f"unknown op (known: {', '.join(OPS)})"
    if not isinstance(capability, Capability):
        return f"declared as {type(capability).__name__}, not a Capability"
    spec = OPS[op]
    if capability.implementation is None:
        return "declared without an implementation"
    if capability.variant not in spec.variants:
        return f"unknown variant {capability.variant!r} (known: {', '.join(spec.variants)})"
    allowed = (set(spec.options) | set(SHARED_OPTIONS) | set(spec.optional_tensors)) - set(BASE_OPTIONS)
    unknown = sorted(set(capability.options) - allowed)
    if unknown:
        return f"unknown option(s) {', '.join(unknown)} (this op takes: {', '.join(sorted(allowed))})"
    bad = [r for r in capability.reductions if r not in REDUCTIONS]
    if bad:
        return f"unknown reduction(s) {', '.join(bad)} (known: {', '.join(REDUCTIONS)})"
    dtypes = capability.dtypes
    per_device = dtypes if isinstance(dtypes, Mapping) else {"any device": dtypes}
    for device, names in per_device.items():
        if device != "any device" and device not in DEVICES:
            return f"unknown device {device!r} in dtypes (known: {', '.join(DEVICES)})"
        bad = [d for d in names if d not in FLOAT_DTYPES]
        if bad:
            return f"unknown dtype(s) {', '.join(map(str, bad))} (known: {', '.join(FLOAT_DTYPES)})"
    if not capability.modes or not all(isinstance(m, str) and m for m in capability.modes):
        return "modes must name at least one way the call runs (eager, jit, compile, ...)"
    return ""
