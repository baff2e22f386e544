"""The kernels a benchmark process times, found through the suite's adapters.

Every framework id the suite knows (built-in or plug-in, see conformance.adapters) is asked
for `Adapter.kernels()` (the records are in conformance/bench/contract.py). A framework that
cannot be loaded in this process is skipped as `not-installed`, one whose adapter offers no
kernels as `not-offered`, and a broken adapter fails its benchmark with the adapter's one-line
message, while every other framework still runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Optional

from conformance import adapters
from conformance.bench.contract import BenchKernel
from conformance.bench.settings import REFERENCE


@dataclass(frozen=True)
class Offer:
    """What one framework offers this process."""

    framework: str
    kernels: Mapping[str, BenchKernel] = field(default_factory=dict)
    adapter: Optional[adapters.Adapter] = None
    skip: str = ""  # "[code] reason" when none of its kernels can run here
    error: str = ""  # a broken adapter: its benchmark fails with this line


def known_ids() -> list[str]:
    """Every framework id the suite knows, in the order of its table (plug-ins after)."""
    return adapters.registry().known_ids()


def selectable_ids() -> list[str]:
    return [REFERENCE, *known_ids()]


def selected_frameworks(requested) -> list[str]:
    """The frameworks whose kernels this process times: those requested (the reference aside),
    or, when none is, every framework this process can run (Keras 3 on its own backend only).
    Raises ValueError on an unknown id."""
    if not requested:
        return adapters.framework_ids_here()
    known = selectable_ids()
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ValueError(f"unknown framework id {unknown[0]!r} (known: {', '.join(known)})")
    return [name for name in requested if name != REFERENCE]


def reference_selected(requested) -> bool:
    """The reference's own cost is timed when nothing is requested, or when it is."""
    return not requested or REFERENCE in requested


@lru_cache(maxsize=None)
def offer(framework: str) -> Offer:
    try:
        adapter = adapters.load(framework)
    except adapters.Unavailable as exc:
        return Offer(framework, skip=f"[not-installed] {exc}")
    except adapters.AdapterError as exc:
        return Offer(framework, error=str(exc))
    try:
        kernels = dict(adapter.kernels())
    except adapters.Unavailable as exc:
        return Offer(framework, adapter=adapter, skip=f"[not-installed] {exc}")
    except Exception as exc:  # noqa: BLE001 - a plug-in's bug is its benchmark's failure, not the run's
        return Offer(framework, adapter=adapter, error=f"{framework}: kernels() raised {type(exc).__name__}: {exc}")
    wrong = [name for name, kernel in kernels.items() if not isinstance(kernel, BenchKernel)]
    if wrong:
        return Offer(framework, adapter=adapter,
                     error=f"{framework}: kernels() entry {wrong[0]!r} is not a conformance.bench.contract.BenchKernel")
    if not kernels:
        return Offer(framework, adapter=adapter, skip=f"[not-offered] {framework} offers no benchmark kernels")
    return Offer(framework, kernels, adapter)


def skip_reason(exc: BaseException) -> Optional[str]:
    """"[code] message" for an exception that says a kernel cannot run here; None for a bug."""
    code = getattr(exc, "code", None)
    if code is None and isinstance(exc, adapters.NotOffered):
        code = "not-offered"
    if code is None and isinstance(exc, adapters.Unavailable):
        code = "not-installed"
    return None if code is None else f"[{code}] {exc}"


def no_device_reason(offer_: Offer, device: str) -> Optional[str]:
    """The skip reason when the framework has no such device here (decided before inputs are made)."""
    assert offer_.adapter is not None, "an offer without an adapter has no kernels"
    devices = tuple(offer_.adapter.devices())
    if device in devices:
        return None
    return f"[no-device] {offer_.framework} has no {device} device here (devices: {', '.join(devices)})"
