"""Framework calls, recorded as the matrix makes them and replayed bare.

With XENT_CONFORMANCE_CALL_LOG set to a directory, every adapter a process loads records each
loss, grad and jvp call (the method and its arguments) into calls-<pid>.pkl there
(conformance/adapters/call_log.py, where discovery wraps each adapter). `replay`
makes the same calls again in a fresh process of the same kind, with nothing else around
them: no reference, comparison, manifest, records or pytest. `xent-conformance floor` times both.
"""
from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

from conformance.adapters.call_log import CALL_LOG_VARIABLE, RecordedAdapter

__all__ = ["CALL_LOG_VARIABLE", "RecordedAdapter", "read", "replay"]  # the log's names, for floor and its tests


def read(path: Path) -> tuple[dict, list[tuple]]:
    """(header, call frames) of one log."""
    frames = []
    with open(path, "rb") as file:
        header = pickle.load(file)
        while True:
            try:
                frames.append(pickle.load(file))
            except (EOFError, pickle.UnpicklingError):  # the end, or a frame cut short by a crash
                return header, frames


def replay(path: Path) -> int:
    """Make the log's calls again, bare; print the count and the seconds spent in calls."""
    header, frames = read(path)
    from conformance import adapters

    adapters.configure(tuple(header["targets"]))
    loaded, raised, in_calls = {}, 0, 0.0
    for framework, composed, method, args, kwargs, _ in frames:
        if (framework, composed) not in loaded:
            adapter = adapters.load(framework)
            loaded[framework, composed] = adapter.composed() if composed else adapter
        started = time.perf_counter()
        try:
            getattr(loaded[framework, composed], method)(*args, **kwargs)
        except Exception:  # noqa: BLE001 - the matrix saw the same call raise; it is a call all the same
            raised += 1
        in_calls += time.perf_counter() - started
    print(f"replayed {len(frames)} calls ({raised} raised) in {in_calls:.1f} s of calls")
    return 0


if __name__ == "__main__":
    sys.exit(replay(Path(sys.argv[1])))
