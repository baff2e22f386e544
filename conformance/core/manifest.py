"""The known-divergence manifest: one YAML file, strict xfails and skips, with reasons."""
from __future__ import annotations

import fnmatch
import functools
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from importlib import metadata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from conformance import data
from conformance.cases import yamlio
from conformance.core import behaviour_models, conditions
from conformance.core.failure_kinds import KINDS

if TYPE_CHECKING:  # checks reads the case files, which the manifest does not need at run time
    from conformance.core.checks import Check

MANIFEST_PATH = data.MANIFEST
# A plug-in ships the entries about its frameworks: an entry point in this group names a
# "module:attr" whose value is the path of its manifest file (a str or Path).
ENTRY_POINT_GROUP = "xent_conformance.manifests"
# kind: reference, pinned, invariant; mode: the ways a framework ran (eager, jit, ...) the entry is about;
# layout: how the inputs were split across ranks (vocab2, batch*; "" where they were not)
MATCH_FIELDS = ("case", "op", "quantity", "framework", "dtype", "device", "kind", "mode", "layout")
ACTIONS = ("xfail", "skip")
ENTRY_KEYS = ("id", "match", "when", "versions", "action", "expect", "reason", "observed", "link")
WHEN_KEYS = ("options", "inputs", "model")


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    id: str
    match: dict[str, Any]  # field -> a pattern or a list of patterns
    action: str
    reason: str
    versions: str = ""
    observed: str = ""
    link: str = ""
    _requirements: tuple[Requirement, ...] = field(default=(), compare=False, repr=False)
    expect: tuple[str, ...] = ()  # kinds of difference it excuses (failure_kinds.KINDS)
    options: dict[str, Any] = field(default_factory=dict)  # conditions.options_hold
    inputs: tuple[tuple[str, object], ...] = ()  # ((predicate, parameter), ...): conditions.PREDICATES, all must hold
    model: str = ""  # behaviour_models: covers only where this model is outside the tolerance

    @property
    def conditional(self) -> bool:
        """Whether the entry says anything of a check's options or inputs."""
        return bool(self.options or self.inputs or self.model)

    def holds_on(self, op: str, options: Mapping[str, object], inputs: Callable[[], conditions.Inputs]) -> bool:
        """The entry's option and input conditions hold (inputs: a conditions.Inputs, made on
        demand, since most entries are ruled out by their fields first)."""
        if self.options and not conditions.options_hold(self.options, op, options):
            return False
        return not self.inputs or conditions.inputs_hold(self.inputs, inputs())

    def describe_when(self) -> str:
        """The entry's conditions in one line, for the docs and the report ('' when none)."""
        parts = [f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in self.options.items()]
        parts += [name if parameter is None else f"{name} {parameter:g}" for name, parameter in self.inputs]
        if self.model:
            parts.append(f"where the {self.model} model is outside the tolerance")
        return "; ".join(parts)

    def covers_mode(self, mode: str) -> bool:
        """Whether the entry speaks of results of this mode: any, when it names none; else only
        a mode it names (a result without a mode is none of them)."""
        pattern = self.match.get("mode")
        if pattern is None:
            return True
        return bool(mode) and _fits(mode, pattern)

    def excuses(self, kinds: Collection[str]) -> bool:
        """Whether the check's kinds of difference are the ones this entry describes."""
        return bool(kinds) and set(kinds) <= set(self.expect)

    def matches(self, fields: Mapping[str, object], package_versions: Mapping[str, str]) -> bool:
        """Every match pattern covers the check's fields, and every `versions` requirement
        holds for the version of the package it names, as this framework recorded it."""
        for key, pattern in self.match.items():
            if key == "mode":  # judged per mode, once the framework has run (covers_mode)
                continue
            if not _fits(fields[key], pattern):
                return False
        return all(_satisfied(requirement, package_versions) for requirement in self._requirements)

    def may_cover(self, framework: str) -> bool:
        return _fits(framework, self.match.get("framework", "*"))


def _fits(value: object, pattern: object) -> bool:
    """A match field's value fits a shell-style pattern, or one of a list of them."""
    return any(fnmatch.fnmatchcase(str(value), str(p)) for p in (pattern if isinstance(pattern, list) else [pattern]))


@dataclass(frozen=True)
class Coverage:
    """Every entry that covers one check, one per cause: a check may both be computed in
    float32 under a float64 dtype and accept undefined input. A difference is known when each
    kind it shows is one some entry expects; a skip entry skips the check."""

    entries: tuple[Entry, ...]

    @property
    def primary(self) -> Entry:
        skips = [e for e in self.entries if e.action == "skip"]
        return (skips or list(self.entries))[0]

    @property
    def id(self) -> str:
        return self.primary.id

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def for_mode(self, mode: str) -> "Coverage | None":
        """The entries about this mode of running (all, for an entry that names none)."""
        found = tuple(e for e in self.entries if e.covers_mode(mode))
        return Coverage(found) if found else None

    @property
    def action(self) -> str:
        return self.primary.action

    @property
    def reason(self) -> str:
        return " | ".join(f"{e.id}: {e.reason.strip()}" for e in self.entries)

    @property
    def expect(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if any(k in e.expect for e in self.entries))

    def excuses(self, kinds: Collection[str]) -> bool:
        return bool(kinds) and set(kinds) <= set(self.expect)

    def expecting(self, kind: str) -> list[Entry]:
        """The entries that say the check shows this kind of difference."""
        return [e for e in self.entries if kind in e.expect]


def candidates(entries: Iterable[Entry], check: Check, package_versions: Mapping[str, str],
               inputs: Callable[[], conditions.Inputs]) -> list[Entry]:
    """The entries whose fields, versions, options and input predicates all hold for a check
    (inputs: a callable giving its conditions.Inputs, made once and only if some entry asks);
    a `model` is judged later, by the runner, once the framework's variant and the expected
    values are known."""
    fields = check_fields(check)
    inputs = functools.cache(inputs)
    return [e for e in entries if e.matches(fields, package_versions)
            and e.holds_on(check.case.op, check.case.options, inputs)]


def check_fields(check: Check) -> dict[str, str]:
    return {"case": check.case.name, "op": check.case.op, "quantity": check.quantity,
            "framework": check.framework, "dtype": check.dtype, "device": check.device,
            "kind": "pinned" if check.pinned else "reference",
            "layout": check.layout.name if check.layout else ""}


def plugin_paths() -> list[tuple[str, str]]:
    """(path, where it was named) of every manifest an installed plug-in registers."""
    found = []
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {point.name!r} ({ENTRY_POINT_GROUP})"
        try:
            found.append((str(point.load()), origin))
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is named, not a traceback
            raise ManifestError(f"{origin}: {point.value}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    return found


def load_all(extra_paths: Iterable[str | os.PathLike[str]] = (), plugins: bool = True) -> list[Entry]:
    """The suite's manifest, then each installed plug-in's, then each `--manifest` path: one
    list of entries, an id used twice refused naming both files."""
    sources = [(str(MANIFEST_PATH), "")] + (plugin_paths() if plugins else [])
    sources += [(str(path), "--manifest") for path in extra_paths]
    entries: list[Entry] = []
    first_seen: dict[str, str] = {}
    for path, origin in sources:
        try:
            loaded = load(path)
        except ManifestError as exc:
            raise ManifestError(f"{exc} (from {origin})" if origin else str(exc)) from None
        for entry in loaded:
            if entry.id in first_seen:
                raise ManifestError(f"{path}: entry {entry.id!r}: id already used in {first_seen[entry.id]}")
            first_seen[entry.id] = path
        entries += loaded
    return entries


def load(path: str | os.PathLike[str] = MANIFEST_PATH) -> list[Entry]:
    """The entries of one manifest file."""
    try:
        text = yamlio.read_text(path)
        data = yamlio.load(text)
    except yamlio.YamlError as exc:
        raise ManifestError(f"{path}{':' + str(exc.line) if exc.line else ''}: {exc}") from None
    lines = yamlio.key_lines(text)
    if not isinstance(data, dict) or set(data) - {"schema", "entries"} or not isinstance(data.get("entries"), list):
        raise ManifestError(f"{path}: a manifest is a mapping with `schema: 1` and a list `entries`")
    entries: list[Entry] = []
    seen: set[object] = set()
    for i, raw in enumerate(data["entries"]):
        where = f"{path}:{lines.get(f'entries[{i}]', 0)}: entries[{i}]"
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: expected a mapping")
        for key in raw:
            if key not in ENTRY_KEYS:
                raise ManifestError(f"{where}: key {key!r}: unknown (allowed: {', '.join(ENTRY_KEYS)})")
        for key in ("id", "match", "action", "reason"):
            if key not in raw:
                raise ManifestError(f"{where}: key {key!r}: missing")
        if raw["id"] in seen:
            raise ManifestError(f"{where}: key 'id': duplicate {raw['id']!r}")
        seen.add(raw["id"])
        if raw["action"] not in ACTIONS:
            raise ManifestError(f"{where}: key 'action': {raw['action']!r} is not one of {', '.join(ACTIONS)}")
        if not isinstance(raw["match"], dict) or any(k not in MATCH_FIELDS for k in raw["match"]):
            raise ManifestError(f"{where}: key 'match': a mapping over {', '.join(MATCH_FIELDS)}")
        if raw["action"] == "skip" and "mode" in raw["match"]:
            raise ManifestError(f"{where}: key 'match.mode': a skip stops the check before any mode runs "
                                f"(use xfail for an entry about some modes)")
        requirements = _requirements(raw.get("versions"), where)
        expect = _expect(raw.get("expect"), raw["action"], where)
        options, inputs, model = _when(raw.get("when"), raw["action"], where)
        entries.append(Entry(str(raw["id"]), raw["match"], raw["action"], str(raw["reason"]).strip(),
                             str(raw.get("versions", "")), str(raw.get("observed", "")), str(raw.get("link", "")),
                             requirements, expect, options, inputs, model))
    return entries


def _when(value: object, action: str, where: str) -> tuple[dict[str, Any], tuple[tuple[str, object], ...], str]:
    """`when: {options: {...}, inputs: [...], model: name}` -> (options, inputs, model), checked."""
    if value is None:
        return {}, (), ""
    if not isinstance(value, dict) or not value:
        raise ManifestError(f"{where}: key 'when': a mapping over {', '.join(WHEN_KEYS)}")
    for key in value:
        if key not in WHEN_KEYS:
            raise ManifestError(f"{where}: key 'when.{key}': unknown (allowed: {', '.join(WHEN_KEYS)})")
    try:
        options = conditions.parse_options(value["options"]) if "options" in value else {}
    except conditions.ConditionError as exc:
        raise ManifestError(f"{where}: key 'when.options': {exc}") from None
    try:
        inputs = conditions.parse_inputs(value["inputs"]) if "inputs" in value else ()
    except conditions.ConditionError as exc:
        raise ManifestError(f"{where}: key 'when.inputs': {exc}") from None
    model = value.get("model", "")
    if "model" in value and model not in behaviour_models.NAMES:
        raise ManifestError(f"{where}: key 'when.model': {model!r} (known: {', '.join(behaviour_models.NAMES)})")
    if model and action == "skip":
        raise ManifestError(f"{where}: key 'when.model': a skip is decided before anything runs; "
                            f"a model needs the framework's variant (use xfail)")
    return options, inputs, str(model)


def _expect(value: object, action: str, where: str) -> tuple[str, ...]:
    """`expect: inaccurate` or a list of kinds: what the covered checks show (xfail entries)."""
    kinds = value if isinstance(value, list) else [value] if value else []
    # The case-file YAML reads nan and inf as numbers; here they are the kinds of those names.
    kinds = [("nan" if k != k else "inf") if isinstance(k, float) and not math.isfinite(k) else k for k in kinds]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ManifestError(f"{where}: key 'expect': {', '.join(map(str, unknown))} (known: {', '.join(KINDS)})")
    if action == "xfail" and not kinds:
        raise ManifestError(f"{where}: key 'expect': missing (what the checks show: {', '.join(KINDS)})")
    return tuple(kinds)


def _requirements(value: object, where: str) -> tuple[Requirement, ...]:
    """`versions: "optax>=0.2.0"` (or a list of such): each range names the package it is
    compared with, so an optax range is never read against the jax version."""
    if not value:
        return ()
    texts = value if isinstance(value, list) else [value]
    requirements = []
    for text in texts:
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement:
            requirement = None
        if requirement is None or not str(requirement.specifier):
            raise ManifestError(f"{where}: key 'versions': {text!r} must name a package and a range, "
                                f"e.g. 'tensorflow>=2.16'")
        requirements.append(requirement)
    return tuple(requirements)


def _satisfied(requirement: Requirement, package_versions: Mapping[str, str]) -> bool:
    """The recorded version of the named package is in the range; False when not recorded."""
    versions = {canonicalize_name(name): version for name, version in package_versions.items()}
    version = versions.get(canonicalize_name(requirement.name))
    if version is None:
        return False
    try:
        return requirement.specifier.contains(Version(str(version).split()[0].split("+")[0]), prereleases=True)
    except InvalidVersion:
        return False


def find_fields(entries: Iterable[Entry], fields: Mapping[str, object],
                package_versions: Mapping[str, str]) -> Entry | None:
    """The first entry that covers a check described by its fields alone (see MATCH_FIELDS):
    an entry with conditions on options or inputs needs a case, and is not one of them."""
    for entry in entries:
        if not entry.conditional and entry.matches(fields, package_versions):
            return entry
    return None
