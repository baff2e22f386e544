"""The known-divergence manifest: one YAML file, strict xfails and skips, with reasons."""
import fnmatch
import math
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from conformance import data
from conformance.cases import yamlio
from conformance.core.failure_kinds import KINDS

MANIFEST_PATH = data.MANIFEST
MATCH_FIELDS = ("case", "op", "quantity", "framework", "dtype", "device", "kind")  # kind: reference, pinned, invariant
ACTIONS = ("xfail", "skip")
ENTRY_KEYS = ("id", "match", "versions", "action", "expect", "reason", "observed", "link")


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    id: str
    match: dict
    action: str
    reason: str
    versions: str = ""
    observed: str = ""
    link: str = ""
    _requirements: tuple = field(default=(), compare=False, repr=False)
    expect: tuple = ()  # kinds of difference it excuses (failure_kinds.KINDS)

    def excuses(self, kinds) -> bool:
        """Whether the check's kinds of difference are the ones this entry describes."""
        return bool(kinds) and set(kinds) <= set(self.expect)

    def matches(self, fields, package_versions):
        """Every match pattern covers the check's fields, and every `versions` requirement
        holds for the version of the package it names, as this framework recorded it."""
        for key, pattern in self.match.items():
            patterns = pattern if isinstance(pattern, list) else [pattern]
            if not any(fnmatch.fnmatchcase(str(fields[key]), str(p)) for p in patterns):
                return False
        return all(_satisfied(requirement, package_versions) for requirement in self._requirements)

    def may_cover(self, framework):
        pattern = self.match.get("framework", "*")
        patterns = pattern if isinstance(pattern, list) else [pattern]
        return any(fnmatch.fnmatchcase(framework, str(p)) for p in patterns)


@dataclass(frozen=True)
class Coverage:
    """Every entry that covers one check, one per cause: a check may both be computed in
    float32 under a float64 dtype and accept undefined input. A difference is known when each
    kind it shows is one some entry expects; a skip entry skips the check."""

    entries: tuple

    @property
    def primary(self) -> Entry:
        skips = [e for e in self.entries if e.action == "skip"]
        return (skips or list(self.entries))[0]

    @property
    def id(self) -> str:
        return self.primary.id

    @property
    def ids(self) -> list:
        return [e.id for e in self.entries]

    @property
    def action(self) -> str:
        return self.primary.action

    @property
    def reason(self) -> str:
        return " | ".join(f"{e.id}: {e.reason.strip()}" for e in self.entries)

    @property
    def expect(self) -> tuple:
        return tuple(k for k in KINDS if any(k in e.expect for e in self.entries))

    def excuses(self, kinds) -> bool:
        return bool(kinds) and set(kinds) <= set(self.expect)

    def expecting(self, kind) -> list:
        """The entries that say the check shows this kind of difference."""
        return [e for e in self.entries if kind in e.expect]


def covering(entries, check, package_versions):
    """The Coverage of a check by every entry that matches it, or None."""
    fields = check_fields(check)
    found = tuple(e for e in entries if e.matches(fields, package_versions))
    return Coverage(found) if found else None


def check_fields(check):
    return {"case": check.case.name, "op": check.case.op, "quantity": check.quantity,
            "framework": check.framework, "dtype": check.dtype, "device": check.device,
            "kind": "pinned" if check.pinned else "reference"}


def load(path=MANIFEST_PATH):
    try:
        text = yamlio.read_text(path)
        data = yamlio.load(text)
    except yamlio.YamlError as exc:
        raise ManifestError(f"{path}{':' + str(exc.line) if exc.line else ''}: {exc}") from None
    lines = yamlio.key_lines(text)
    if not isinstance(data, dict) or set(data) - {"schema", "entries"} or not isinstance(data.get("entries"), list):
        raise ManifestError(f"{path}: a manifest is a mapping with `schema: 1` and a list `entries`")
    entries, seen = [], set()
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
        requirements = _requirements(raw.get("versions"), where)
        expect = _expect(raw.get("expect"), raw["action"], where)
        entries.append(Entry(str(raw["id"]), raw["match"], raw["action"], str(raw["reason"]).strip(),
                             str(raw.get("versions", "")), str(raw.get("observed", "")), str(raw.get("link", "")),
                             requirements, expect))
    return entries


def _expect(value, action, where):
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


def _requirements(value, where):
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


def _satisfied(requirement, package_versions):
    """The recorded version of the named package is in the range; False when not recorded."""
    versions = {canonicalize_name(name): version for name, version in package_versions.items()}
    version = versions.get(canonicalize_name(requirement.name))
    if version is None:
        return False
    try:
        return requirement.specifier.contains(Version(str(version).split()[0].split("+")[0]), prereleases=True)
    except InvalidVersion:
        return False


def find(entries, check, package_versions):
    """The first entry that covers this check, given the framework's recorded package
    versions ({distribution: version}), or None."""
    return find_fields(entries, check_fields(check), package_versions)


def find_fields(entries, fields, package_versions):
    """The first entry that covers a check described by its fields (see MATCH_FIELDS)."""
    for entry in entries:
        if entry.matches(fields, package_versions):
            return entry
    return None
