"""Recording the framework calls a process makes, for `xent-conformance floor`.

With XENT_CONFORMANCE_CALL_LOG set to a directory, every adapter a process loads records each
loss, grad and jvp call (the method and its arguments) into calls-<pid>.pkl there; the
replay and its timing are conformance/bench/calls.py's. Here, beside discovery, so that
loading an adapter never imports the bench package.
"""
from __future__ import annotations

import functools
import os
import pickle
import time
from pathlib import Path
from typing import BinaryIO

from conformance import frameworks

CALL_LOG_VARIABLE = "XENT_CONFORMANCE_CALL_LOG"
RECORDED_METHODS = ("loss", "grad", "jvp")


class CallLog:
    """One process's log: a header (its environment and adapter targets), then one frame per call."""

    def __init__(self, directory: Path, targets: tuple[str, ...]):
        self.directory = Path(directory)
        self.path = self.directory / f"calls-{os.getpid()}.pkl"
        self._file: BinaryIO | None = None
        self._targets = targets

    def write(self, frame: tuple) -> None:
        try:
            data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an argument that cannot be pickled: that call goes unrecorded
            return
        if self._file is None:
            self._file = open(self.path, "wb")  # noqa: SIM115 - held for the life of the process
            environ = {name: os.environ.get(name, "") for name in ("KERAS_BACKEND", frameworks.PROCESS_VARIABLE)}
            pickle.dump({"environ": environ, "targets": list(self._targets)}, self._file)
        self._file.write(data)
        self._file.flush()


class RecordedAdapter:
    """An adapter whose loss, grad and jvp calls are written to a CallLog; all else is the adapter's."""

    def __init__(self, adapter, log: CallLog, composed: bool = False):
        self._adapter, self._log, self._composed = adapter, log, composed

    def __getattr__(self, name):
        value = getattr(self._adapter, name)
        if name in RECORDED_METHODS:
            return self._recording(name, value)
        if name == "composed":
            return self._composed_recorded(value)
        return value

    def _recording(self, name, method):
        @functools.wraps(method)  # inspect.signature sees the method's own parameters
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - started
                self._log.write((self._adapter.framework, self._composed, name, args, kwargs, seconds))
        return call

    def _composed_recorded(self, composed):
        @functools.wraps(composed)
        def call():
            adapter = composed()
            return None if adapter is None else RecordedAdapter(adapter, self._log, composed=True)
        return call


def recording(adapter, targets: tuple[str, ...] = ()):
    """The adapter, recorded where XENT_CONFORMANCE_CALL_LOG asks for it."""
    directory = os.environ.get(CALL_LOG_VARIABLE)
    if not directory:
        return adapter
    global _LOG
    if _LOG is None or _LOG.directory != Path(directory):
        _LOG = CallLog(Path(directory), targets)
    return RecordedAdapter(adapter, _LOG)


_LOG: CallLog | None = None
