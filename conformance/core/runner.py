"""Run one check: reference value, adapter call, comparison, manifest -> a results record."""
import inspect
import time

import numpy as np

from conformance import adapters
from conformance.adapters import compiles
from conformance.core import behaviour_models, checks, goldens, mode_verdicts
from conformance.core import manifest as divergences
from conformance.core import reference_cache
from conformance.core import tolerance as tol
from conformance.core.expected import (as64, call_options, case_cotangent, cast_inputs, conditions_inputs,
                                       expected_for, model_shows, probed_inputs, reference_values)
from conformance.results.records import number, summarize
from reference import registry

__all__ = ["Runner", "cast_inputs", "conditions_inputs", "expected_for", "reference_values"]


class Runner:
    def __init__(self, manifest, required=()):
        self.manifest = manifest
        self.required = set(required)
        self.matched_entries = set()  # every manifest entry that covered something in this process
        self._references = {}  # (id(case), variant, dtype, quantity) -> (case, (expected, scale))
        self._goldens = {}  # (id(pinned), dtype) -> (case, the golden's record)
        self._models = {}  # (id(case), model, variant, dtype, quantity, framework, id(pinned)) -> (case, shows)

    def reference_values(self, case, variant, cast, dtype, quantity):
        """reference_values, once per case, variant, dtype and quantity: the frameworks that
        follow one variant share it (a 128,256-class reference takes a second), and so do
        the other processes of a run (reference_cache)."""
        quantity = "vjp_logits" if quantity == "second_backward" else quantity  # one product, expected twice
        key = (id(case), variant, dtype, quantity)  # the entry holds case, so its id stays its own
        if key not in self._references:
            values = reference_cache.load(case, variant, dtype, quantity)
            if values is None:
                values = reference_values(case, variant, cast, dtype, quantity)
                reference_cache.store(case, variant, dtype, quantity, values)
            self._references[key] = (case, values)
        return self._references[key][1]

    def golden(self, check, cast) -> dict:
        """The pinned number's verdict (goldens.judge) and the reference value it is judged by:
        once per pinned number and dtype, whichever framework's check carries it."""
        pinned, case = check.pinned, check.case
        key = (id(pinned), check.dtype)  # the entry holds the case, and so the pinned number, alive
        if key not in self._goldens:
            reference, _ = self.reference_values(case, pinned.variant, cast, check.dtype, check.quantity)
            verdict = goldens.judge(pinned.values, reference, check.dtype, pinned.digits, pinned.decimals,
                                    tol.pinned_ulps(), within=pinned.within())
            self._goldens[key] = (case, {"verdict": verdict, "variant": pinned.variant,
                                         "printed": summarize(pinned.values), "precision": pinned.printed.strip() or "exact",
                                         "reference": summarize(reference, "float64")})
        return dict(self._goldens[key][1])

    @staticmethod
    def _gradient(adapter, check, args, variant, cast):
        """adapter.grad for a gradient, or with the seeded cotangent for a vector-Jacobian product."""
        if check.quantity == "jvp":
            return adapter.jvp(*args, direction=checks.direction(check.case, check.dtype))
        wrt = checks.wrt_of(check.quantity)
        if check.quantity in checks.WRT:
            return adapter.grad(*args, wrt=wrt)
        c = case_cotangent(check.case, variant, as64(cast), check.dtype)  # float64 values the dtype holds
        if check.quantity in checks.PROBE_QUANTITIES:
            return _probe(adapter, args, c, check.quantity)
        if "cotangent" not in inspect.signature(adapter.grad).parameters:
            raise adapters.NotOffered(f"{check.framework}'s grad takes no cotangent (vector-Jacobian products)")
        return adapter.grad(*args, wrt=wrt, cotangent=c)

    def base_record(self, check):
        case = check.case
        return {
            "id": check.id, "case": case.name, "op": case.op, "quantity": check.quantity,
            "kind": "pinned" if check.pinned else "reference", "options": dict(case.options),
            "framework": check.framework, "framework_version": None, "variant": None,
            "dtype": check.dtype, "device": check.device, "outcome": None, "reason": None,
            "expected": None, "actual": None, "max_abs_err": None, "max_ulp_err": None,
            "tolerance": None, "message": "", "source": check.pinned.source if check.pinned else None,
            "file": case.path, "undefined": case.undefined,
        }

    def run(self, check):
        record = self.base_record(check)
        started = time.perf_counter()
        try:
            self._run(check, record)
        finally:
            record["seconds"] = round(time.perf_counter() - started, 6)
        return record

    def _run(self, check, record):
        def finish(outcome, reason=None, message=""):
            record.update(outcome=outcome, reason=reason, message=message)

        cast = cast_inputs(check.case, check.dtype)
        if check.pinned:  # the source's number against the mathematics, whichever framework runs
            record["golden"] = self.golden(check, cast)
            if check.pinned.inexact:
                return _judge_inexact_golden(record["golden"]["verdict"], check.pinned, finish)

        try:
            adapter = adapters.load(check.framework)
        except adapters.AdapterError as exc:
            return finish("error", "adapter-error", str(exc))
        except adapters.Unavailable as exc:
            if check.framework in self.required:
                return finish("error", "not-installed", f"required framework unavailable: {exc}")
            return finish("skipped", "not-installed", str(exc))
        record["framework_version"] = adapter.version()
        candidates = divergences.candidates(self.manifest, check, adapter.package_versions(),
                                            lambda: conditions_inputs(check.case, cast))
        skips = [e for e in candidates if e.action == "skip"]
        if skips:
            self._note(record, divergences.Coverage(tuple(skips)))
            return finish("skipped", "manifest", f"{skips[0].id}: {skips[0].reason}")
        if check.device not in adapter.devices():
            return finish("skipped", "no-device", f"{check.framework} sees no {check.device} device here")
        # copies: a kernel that writes into its inputs (inputs_intact) must not reach the case's arrays
        given = {name: array.copy() for name, array in cast.items()}
        options = call_options(check.case, given)
        try:
            capability = adapter.check_offered(check.case.op, check.dtype, check.device, check.quantity, options)
        except adapters.NotOffered as exc:
            return finish(*_skip_reason(exc), str(exc))

        variant = capability.variant
        record["variant"] = variant
        gradient = checks.GRADIENT_OF.get(check.quantity)
        if gradient and not registry.has_grad(check.case.op, variant, gradient):
            return finish("skipped", "not-offered", f"no analytic {check.quantity} for the {variant} variant yet")
        expected, scale, tolerance = expected_for(check, variant, cast, self.reference_values)
        entry = self._coverage(candidates, check, variant, cast, (expected, scale, tolerance))
        if entry:
            self._note(record, entry)
        prediction, labels = given[registry.OPS[check.case.op].prediction], given["labels"]
        compiled_before = compiles.snapshot()
        try:
            args = (check.case.op, prediction, labels, options, check.dtype, check.device)
            if check.quantity == "loss":
                returned = adapter.loss(*args)
            else:
                returned = self._gradient(adapter, check, args, variant, cast)
        except adapters.NotOffered as exc:
            return finish(*_skip_reason(exc), str(exc))
        except Exception as exc:  # noqa: BLE001 - the framework raised: judged as that mode's outcome
            returned = exc
        compiled = compiles.since(compiled_before)
        if compiled:
            record["compiles"] = compiled
        modes = adapters.selected_modes(capability.modes)
        outcomes = mode_verdicts.outcomes_of(returned, modes)
        results = [value for _, value in outcomes if not isinstance(value, BaseException)]
        if not isinstance(returned, BaseException) and check.quantity not in checks.PROBE_QUANTITIES:
            missing = _missing_modes(modes, [mode for mode, _ in outcomes])
            if missing:
                return finish("error", "adapter-error", f"{check.framework} declares modes {', '.join(modes)} "
                                                        f"but returned none for {', '.join(missing)}")
        for each in results:
            if each.device != check.device:
                return finish("error", "wrong-device", f"asked for {check.device}, computed on {each.device}")

        # Every way the framework ran (JAX: jit and eager) is judged on its own; the record shows the worst.
        judged = [mode_verdicts.judge_mode(mode, value, expected, scale, tolerance, check,
                                           lambda v, r: describe(check, variant, v, expected, r))
                  for mode, value in outcomes]
        valued = [o for o in judged if o.verdict is not None]
        if valued:
            worst = max(valued, key=lambda o: (not o.verdict.passed, o.verdict.max_ulp_err))
            verdict, result = worst.verdict, worst.result
            record.update(
                expected=summarize(expected, "float64", verdict.worst_index),
                actual=summarize(result.values, result.dtype, verdict.worst_index),
                max_abs_err=number(verdict.max_abs_err), max_ulp_err=number(verdict.max_ulp_err),
                tolerance={**tolerance.as_record(check.dtype), "bound_at_worst": number(verdict.bound_at_worst)},
            )
        if all(o.refused for o in judged):
            record["refused"] = "raised" if any(o.refused == "raised" for o in judged) else "nan"
        kinds = set().union(*(o.kinds for o in judged))
        if kinds:
            record["failure"] = sorted(kinds)
        decided = mode_verdicts.judge_check(judged, entry)
        if len(judged) > 1:
            record["modes"] = mode_verdicts.modes_record(judged, decided, expected, check.dtype)
        return finish(decided.outcome, decided.reason, decided.message)

    def _note(self, record, coverage):
        self.matched_entries.update(coverage.ids)
        record["manifest"] = coverage.id
        if len(coverage.ids) > 1:
            record["manifest_also"] = [i for i in coverage.ids if i != coverage.id]

    def _coverage(self, candidates, check, variant, cast, expectation):
        """The xfail candidates that hold here: an entry with a model only where the model's
        result is outside the check's tolerance (the behaviour shows on these inputs), on the
        kinds of check the model speaks to (behaviour_models.judged_on)."""
        found = tuple(e for e in candidates if e.action == "xfail" and (not e.model or (
            behaviour_models.judged_on(e.model, bool(check.pinned))
            and self._model_shows(e.model, check, variant, cast, expectation))))
        return divergences.Coverage(found) if found else None

    def _model_shows(self, model, check, variant, cast, expectation):
        # the tolerance may differ by framework, and each pinned number is its own expectation
        key = (id(check.case), model, variant, check.dtype, check.quantity, check.framework, id(check.pinned))
        if key not in self._models:
            self._models[key] = (check.case, model_shows(model, check, variant, cast, expectation,
                                                         self.reference_values))
        return self._models[key][1]


def _probe(adapter, args, cotangent, quantity):
    """A backward probe (on copies of the inputs): the second backward's product, or the inputs
    read back. A probe runs one way (the adapter's first mode), so its result is not asked for
    every mode."""
    probe = adapter.backward_probe(*args, cotangent=cotangent)
    if quantity == "second_backward":
        return probe.second
    op, options, dtype = args[0], args[3], args[4]  # values only: the dtype is the inputs'
    tensors = [name for name in registry.OPS[op].tensors if name in options]
    missing = [name for name in tensors if name not in probe.tensors_after]
    if missing:
        raise adapters.NotOffered(f"the probe read back no {', '.join(missing)}")
    after = [probe.prediction_after, *(probe.tensors_after[name] for name in tensors), probe.labels_after]
    return adapters.Result(probed_inputs(*after), dtype, probe.first.device, probe.first.mode)


def _judge_inexact_golden(verdict, pinned, finish):
    """A number its case file says is wrong beyond its digits holds no framework to it; the
    marking itself is checked, so a golden that turns out right is noticed."""
    if verdict != "inexact":
        return finish("failed", "golden-marking", f"the pinned number is marked inexact ({pinned.inexact}), but it "
                                                  f"is {verdict} against the reference: remove the marking")
    return finish("skipped", "inexact-golden", f"the source's number is wrong beyond its printed digits: "
                                               f"{pinned.inexact}")


def _missing_modes(declared, returned):
    """Declared (and selected) modes the adapter did not run; a single declared mode may go unnamed."""
    if len(declared) == 1 and len(returned) == 1:
        return []
    return [mode for mode in declared if mode not in returned]


def _skip_reason(exc):
    """(outcome, reason) of a call not made: a mode left out of the run is not the framework's lack."""
    return ("skipped", "mode-not-selected" if isinstance(exc, adapters.ModeNotSelected) else "not-offered")


def describe(check, variant, verdict, expected, result):
    """The failure message: how many elements, the largest error, where, and the bound."""
    against = f"reference variant {variant}"
    if check.pinned:
        pinned = check.pinned
        value = repr(pinned.value) if pinned.shape is None else f"array of shape {list(pinned.shape)}"
        against = f"pinned {value}{pinned.printed} ({pinned.source})"
    mode = f" ({result.mode})" if result.mode else ""
    lines = [f"{check.framework}{mode} {check.case.op} {check.quantity} {check.dtype} on {check.device} vs {against}"]
    lines += verdict.problems
    if verdict.worst_index is not None:
        i = verdict.worst_index
        lines.append(
            f"{verdict.mismatched}/{verdict.total} elements outside tolerance; worst at index {list(i)}: "
            f"expected {np.asarray(expected)[i]!r}, actual {np.asarray(result.values)[i]!r}, "
            f"error {verdict.max_abs_err:.3g} ({verdict.max_ulp_err:.3g} ULP), bound there {verdict.bound_at_worst:.3g}")
    return "\n".join(lines)
