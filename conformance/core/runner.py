"""Run one check: its stages, in order (stages.py), and the results record they fill in.

case -> the inputs as the dtype holds them -> the adapter -> the manifest's entries -> what the
adapter offers -> the expected values (references.py) -> the entries that cover the check ->
the adapter call -> each mode's verdict -> the check's verdict.
"""
from __future__ import annotations

import time
from typing import Iterable, Sequence

from conformance import adapters
from conformance.core import stages
from conformance.core.checks import Check
from conformance.core.expected import call_options, cast_inputs, conditions_inputs
from conformance.core.manifest import Coverage, Entry
from conformance.core.references import References

__all__ = ["Runner", "base_record", "cast_inputs", "conditions_inputs"]


class Runner:
    def __init__(self, manifest: Sequence[Entry], required: Iterable[str] = ()) -> None:
        self.manifest = manifest
        self.required = set(required)
        self.matched_entries: set[str] = set()  # every manifest entry that covered something in this process
        self.references = References()

    def run(self, check: Check) -> dict:
        record = base_record(check)
        started = time.perf_counter()
        try:
            self._run(check, record)
        except stages.Decided as decided:
            if decided.coverage:
                self._note(record, decided.coverage)
            record.update(outcome=decided.outcome, reason=decided.reason, message=decided.message)
        finally:
            record["seconds"] = round(time.perf_counter() - started, 6)
        return record

    def _run(self, check: Check, record: dict) -> None:
        cast = cast_inputs(check.case, check.dtype)
        if check.pinned:  # the source's number against the mathematics, whichever framework runs
            record["golden"] = self.references.golden(check, cast)
            stages.golden_marking(record["golden"]["verdict"], check.pinned)
        adapter = stages.load_adapter(check.framework, self.required)
        record["framework_version"] = adapter.version()
        candidates = stages.manifest_candidates(self.manifest, check, adapter, cast)
        # copies: a kernel that writes into its inputs (inputs_intact) must not reach the case's arrays
        given = {name: array.copy() for name, array in cast.items()}
        options = call_options(check.case, given)
        capability = stages.offered(adapter, check, options)
        record["variant"] = variant = capability.variant
        stages.has_reference(check, variant)
        expectation = self.references.expectation(check, variant, cast)
        coverage = stages.covering(candidates, check, variant, cast, expectation, self.references)
        if coverage:
            self._note(record, coverage)
        called = stages.call(adapter, check, variant, cast, given, options)
        if called.compiled:
            record["compiles"] = called.compiled
        judged = stages.judge(check, variant, called.returned, adapters.selected_modes(capability.modes), expectation)
        verdict = stages.verdict(check, judged, expectation, coverage)
        record.update(verdict.fields)
        record.update(outcome=verdict.outcome, reason=verdict.reason, message=verdict.message)

    def _note(self, record: dict, coverage: Coverage) -> None:
        self.matched_entries.update(coverage.ids)
        record["manifest"] = coverage.id
        if len(coverage.ids) > 1:
            record["manifest_also"] = [i for i in coverage.ids if i != coverage.id]


def base_record(check: Check) -> dict:
    """The record every check starts from: what it is, nothing of how it went."""
    case = check.case
    return {
        "id": check.id, "case": case.name, "op": case.op, "quantity": check.quantity,
        "kind": "pinned" if check.pinned else "reference", "options": dict(case.options),
        "framework": check.framework, "framework_version": None, "variant": None,
        "dtype": check.dtype, "device": check.device, "outcome": None, "reason": None,
        "expected": None, "actual": None, "max_abs_err": None, "max_ulp_err": None,
        "tolerance": None, "message": "", "source": check.pinned.source if check.pinned else None,
        "file": case.path, "undefined": case.undefined,
        "layout": check.layout.as_record() if check.layout else None,
    }
