"""What a merged run holds for a pytest process that did not end as pytest ends a run.

`run` starts one pytest process per Keras backend and per framework that needs its own. One
that dies of a signal, hangs past `--process-timeout`, or exits with a status other than
pytest's 0 (passed) and 1 (failed) must not take the others with it, nor pass unseen: its
checks are missing (or written, but by a process that then crashed), so the merge gets error
records of kind "process", one per framework the process checks and device it checks them on,
with ids `<process>::process::<framework>::<device>` that no check id can take. `gate`, the
summary and the report count them as errors; the results the process wrote, if any, are kept
beside them. A process has no dtype, quantity or case: those fields are null.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass

KIND = "process"
OP = "(process)"  # the summary's row for these records: sorts before every op name
NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR
MEANINGS = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}
# reason codes of the records, in the place of a check's skip or error reason
HUNG, DIED, EXITED, NO_TESTS_REASON, UNREADABLE = (
    "process-hung", "process-died", "process-exited", "process-no-tests", "results-unreadable")


def signal_name(code: int) -> str:
    """SIGABRT for an exit status of -6 (a process ended by that signal)."""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


@dataclass
class ProcessEnd:
    """How one pytest process of a run ended, and what it left."""

    label: str  # keras-tensorflow, keras-jax, paddle, ...
    frameworks: list[str]  # the framework ids it checks
    devices: list[str]  # the devices it checks them on (cpu, cuda)
    code: int | None  # its exit status (negative: the signal); None when killed for hanging
    seconds: float = 0.0
    timeout: float | None = None
    written: int | None = None  # results in the file it wrote; None when it wrote none
    unreadable: str | None = None  # why the results file it left could not be read
    selective: bool = False  # the run selected checks, so one process may rightly collect none
    rerun: str = ""  # the command line that runs the process again, its variables first

    @property
    def reason(self) -> str | None:
        """None when the process ended as a pytest run ends; else the reason of its records."""
        if self.code is None:
            return HUNG
        if self.code < 0:
            return DIED
        if self.code == NO_TESTS and self.written is None:
            return None if self.selective else NO_TESTS_REASON
        if self.code not in (0, 1, NO_TESTS):
            return EXITED
        return UNREADABLE if self.unreadable else None

    @property
    def status(self) -> str:
        """'exit -6, SIGABRT', 'exit 3, internal error', or how a hang ended."""
        if self.code is None:
            return f"killed after {self.timeout:g} s (--process-timeout)"
        if self.code < 0:
            return f"exit {self.code}, {signal_name(self.code)}"
        meaning = MEANINGS.get(self.code)
        return f"exit {self.code}, {meaning}" if meaning else f"exit {self.code}"

    def left(self) -> str:
        """What it wrote: the results are kept whenever they can be read."""
        if self.unreadable:
            return f"its results file is unreadable ({self.unreadable})"
        if self.written is None:
            return "no results written"
        return f"{self.written} results written and kept"

    def describe(self) -> str:
        """One line naming the process, its exit status and what it left."""
        what = {HUNG: "hung", DIED: "died", EXITED: "exited abnormally", UNREADABLE: "ended",
                NO_TESTS_REASON: "collected no tests"}.get(self.reason or "", "ended")
        if self.code == NO_TESTS and self.reason is None:
            return (f"the {self.label} process collected no tests ({self.status}): "
                    "the selection matched none of its checks")
        tail = "" if self.reason == NO_TESTS_REASON else f"; {self.left()}"
        return f"the {self.label} process {what} ({self.status}){tail}; checks of {', '.join(self.frameworks)}"

    def records(self) -> list[dict]:
        """Error records standing for its checks (none when it ended as pytest ends a run)."""
        if self.reason is None:
            return []
        message = self.describe()
        return [{
            "id": f"{self.label}::{KIND}::{framework}::{device}", "case": None, "op": OP, "quantity": None,
            "kind": KIND, "options": {}, "framework": framework, "framework_version": None, "variant": None,
            "dtype": None, "device": device, "outcome": "error", "reason": self.reason, "expected": None,
            "actual": None, "max_abs_err": None, "max_ulp_err": None, "tolerance": None, "message": message,
            "file": None, "process": self.label, "exit_status": self.code,
            "signal": signal_name(self.code) if self.code is not None and self.code < 0 else None,
            "results_written": self.written, "seconds": round(self.seconds, 3), "rerun": self.rerun,
        } for framework in (self.frameworks or [self.label]) for device in (self.devices or ["cpu"])]


def is_process_record(record: dict) -> bool:
    return record.get("kind") == KIND


def join(kept: dict, other: dict) -> dict:
    """The same process failed in two merged runs (CPU and GPU, two shards): one record, both causes."""
    if other.get("message") and other["message"] not in (kept.get("message") or ""):
        return {**kept, "message": f"{kept.get('message')}; and {other['message']}"}
    return kept
