"""How many compilations each mode made, and how long the calls that compiled took: the cost
that dominates a cold run, counted where it happens so the run's summary can show it.

An adapter runs a compiled mode's call through `counted(mode, size, call)`, where size() is the
framework's own count of what it compiled (jitted executables, traced graphs, dynamo frames);
a call after which that count grew compiled, and its time is the compile's (the execution of a
loss is a small part of it). The runner takes the difference around each check (`since`).
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")

_LOG: dict[str, list] = {}  # mode -> [compilations, seconds of the calls that compiled]


def counted(mode: str, size: Callable[[], int], call: Callable[[], T]) -> T:
    """call(), counting the compilations it made in this mode (size: the framework's count)."""
    before, started = size(), time.perf_counter()
    try:
        return call()
    finally:
        grown = size() - before
        if grown > 0:
            entry = _LOG.setdefault(mode, [0, 0.0])
            entry[0] += grown
            entry[1] += time.perf_counter() - started


def snapshot() -> dict[str, tuple[int, float]]:
    return {mode: (count, seconds) for mode, (count, seconds) in _LOG.items()}


def since(before: dict[str, tuple[int, float]]) -> dict[str, dict]:
    """The compilations made after `before` was taken: mode -> {count, seconds}."""
    grown = {}
    for mode, (count, seconds) in _LOG.items():
        was_count, was_seconds = before.get(mode, (0, 0.0))
        if count > was_count:
            grown[mode] = {"count": count - was_count, "seconds": round(seconds - was_seconds, 4)}
    return grown
