"""Run one check: reference value, adapter call, comparison, manifest -> a results record."""
import inspect
import time
import traceback

import numpy as np

from conformance import adapters
from conformance.core import behaviour_models, checks, goldens, relative_view
from conformance.core import manifest as divergences
from conformance.core import reference_cache
from conformance.core import tolerance as tol
from conformance.core.compare import compare
from conformance.core.expected import (as64, call_options, case_cotangent, cast_inputs, conditions_inputs,
                                       expected_for, model_shows, probed_inputs, reference_values)
from conformance.core.failure_kinds import classify
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
            return finish("skipped", "not-offered", str(exc))

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
        try:
            args = (check.case.op, prediction, labels, options, check.dtype, check.device)
            if check.quantity == "loss":
                result = adapter.loss(*args)
            else:
                result = self._gradient(adapter, check, args, variant, cast)
        except adapters.NotOffered as exc:
            return finish("skipped", "not-offered", str(exc))
        except Exception as exc:  # the framework raised: a refusal of undefined input, else a finding
            mode = exc.mode if isinstance(exc, adapters.RaisedInMode) else _single_mode(capability)
            error = exc.error if isinstance(exc, adapters.RaisedInMode) else exc
            detail = _what_raised(error)
            if check.case.undefined:
                record["refused"] = "raised"
                return _judge_refusal(entry, finish, f"{check.framework} refused the undefined input: {detail}")
            record["failure"] = ["raises"]
            message = f"{check.framework}{f' ({mode})' if mode else ''} raised {detail}"
            raised = entry.for_mode(mode) if entry else None  # unnamed: a raise of no one mode
            if raised:
                return _judge_known(raised, {"raises"}, finish, message)
            return finish("error", "raised", message)
        results = result.all_modes()
        missing = [] if check.quantity in checks.PROBE_QUANTITIES else _missing_modes(capability, results)
        if missing:
            return finish("error", "adapter-error", f"{check.framework} declares modes {', '.join(capability.modes)} "
                                                    f"but returned none for {', '.join(missing)}")
        for each in results:
            if each.device != check.device:
                return finish("error", "wrong-device", f"asked for {check.device}, computed on {each.device}")

        # Every way the framework ran (JAX: jit and eager) is judged; the record shows the worst.
        verdicts = [compare(expected, each.values, scale, check.dtype, tolerance, each.dtype) for each in results]
        worst = max(range(len(results)), key=lambda i: (not verdicts[i].passed, verdicts[i].max_ulp_err))
        verdict, result = verdicts[worst], results[worst]
        record.update(
            expected=summarize(expected, "float64", verdict.worst_index),
            actual=summarize(result.values, result.dtype, verdict.worst_index),
            max_abs_err=number(verdict.max_abs_err), max_ulp_err=number(verdict.max_ulp_err),
            tolerance={**tolerance.as_record(check.dtype), "bound_at_worst": number(verdict.bound_at_worst)},
        )
        if len(results) > 1:
            record["modes"] = _modes_record(results, verdicts, expected, check.dtype)
        passed = all(v.passed for v in verdicts)
        if check.case.undefined and passed and np.isnan(expected).any():
            record["refused"] = "nan"  # NaN exactly where the reference says the loss is undefined
        message = describe(check, variant, verdict, expected, result)
        kinds_of = [classify(expected, each.values, v, check.dtype, each.dtype) for each, v in zip(results, verdicts)]
        kinds = set().union(*kinds_of)
        if kinds:
            record["failure"] = sorted(kinds)
        if entry:
            modes = [each.mode or _single_mode(capability) for each in results]
            return _judge_modes(entry, modes, results, verdicts, kinds_of, finish, message, check, variant, expected)
        return finish("passed" if passed else "failed", None, "" if passed else message)

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


def _what_raised(error):
    """One line of the exception: its first (a compiler's message ends with advice on logging),
    unless that only introduces the rest (TensorFlow's "in user code:"), then its last."""
    lines = [line for line in "".join(traceback.format_exception_only(type(error), error)).splitlines() if line.strip()]
    return (lines[-1] if lines[0].rstrip().endswith(":") else lines[0]).strip()


def _modes_record(results, verdicts, expected, dtype):
    """Each mode's verdict and largest ULP error; beside a compiled mode, whether the rule of
    torch._dynamo.utils.same accepts it next to the eager result (relative_view)."""
    modes = {each.mode: {"passed": v.passed, "max_ulp_err": number(v.max_ulp_err),
                         "rms_err": number(relative_view.rms_error(expected, each.values))}
             for each, v in zip(results, verdicts)}
    eager = next((each for each in results if each.mode == "eager"), None)
    for each in results:
        if eager is not None and each is not eager:
            modes[each.mode]["same_as_eager"] = relative_view.same(expected, eager.values, each.values, dtype)
    return modes


def _single_mode(capability):
    """The mode of an adapter that runs one way and may leave its results unnamed."""
    return capability.modes[0] if len(capability.modes) == 1 else ""


def _judge_modes(coverage, modes, results, verdicts, kinds_of, finish, message, check, variant, expected):
    """A known divergence where every way the framework ran either passes or differs as an entry
    about that mode says; an entry naming modes (eager) says nothing of the others (jit)."""
    covered = [i for i, mode in enumerate(modes) if any(e.covers_mode(mode) for e in coverage.entries)]
    for i, each in enumerate(results):
        if i not in covered and not verdicts[i].passed:
            return finish("failed", None, describe(check, variant, verdicts[i], expected, each))
    if not covered:
        return finish("passed", None, "")
    entries = divergences.Coverage(tuple(e for e in coverage.entries if any(e.covers_mode(modes[i]) for i in covered)))
    if all(verdicts[i].passed for i in covered):
        return finish("xpassed", "manifest", f"{entries.id} no longer diverges (strict xfail): {message}")
    return _judge_known(entries, set().union(*(kinds_of[i] for i in covered)), finish, message)


def _judge_inexact_golden(verdict, pinned, finish):
    """A number its case file says is wrong beyond its digits holds no framework to it; the
    marking itself is checked, so a golden that turns out right is noticed."""
    if verdict != "inexact":
        return finish("failed", "golden-marking", f"the pinned number is marked inexact ({pinned.inexact}), but it "
                                                  f"is {verdict} against the reference: remove the marking")
    return finish("skipped", "inexact-golden", f"the source's number is wrong beyond its printed digits: "
                                               f"{pinned.inexact}")


def _judge_known(entry, kinds, finish, message):
    """A known divergence only where the check differs the way its entry says it does."""
    if entry.excuses(kinds):
        return finish("xfailed", "manifest", entry.reason)
    return finish("failed", "manifest-mismatch", f"{', '.join(entry.ids)} expect {', '.join(entry.expect)}, but this "
                                                 f"check shows {', '.join(sorted(kinds)) or 'no difference'}: {message}")


def _judge_refusal(entry, finish, message):
    """Raising on undefined input conforms; an entry that said the framework accepts it (a
    finite number) is now a fixed divergence. Entries about the numbers of valid elements
    (a dtype, an accuracy) say nothing about a refusal."""
    stale = entry.expecting("finite") if entry and entry.action == "xfail" else []
    if stale:
        return finish("xpassed", "manifest", f"{stale[0].id} no longer diverges (strict xfail): {message}")
    return finish("passed", None, message)


def _missing_modes(capability, results):
    """Declared modes the adapter did not run (a single declared mode may go unnamed)."""
    if len(capability.modes) == 1 and len(results) == 1:
        return []
    returned = {each.mode for each in results}
    return [mode for mode in capability.modes if mode not in returned]


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
