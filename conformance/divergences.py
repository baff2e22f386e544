"""The known-divergence manifest: one YAML file, strict xfails and skips, with reasons."""
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from conformance import yamlio

MANIFEST_PATH = Path(__file__).with_name("divergences.yaml")
MATCH_FIELDS = ("case", "op", "quantity", "framework", "dtype", "device", "kind")  # kind: reference, pinned, invariant
ACTIONS = ("xfail", "skip")
ENTRY_KEYS = ("id", "match", "versions", "action", "reason", "observed", "link")


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
    _spec: SpecifierSet = field(default=None, compare=False, repr=False)

    def matches(self, fields, version):
        for key, pattern in self.match.items():
            patterns = pattern if isinstance(pattern, list) else [pattern]
            if not any(fnmatch.fnmatchcase(str(fields[key]), str(p)) for p in patterns):
                return False
        if self._spec is not None:
            try:
                return Version(version.split()[0].split("+")[0]) in self._spec
            except InvalidVersion:
                return False
        return True

    def may_cover(self, framework):
        pattern = self.match.get("framework", "*")
        patterns = pattern if isinstance(pattern, list) else [pattern]
        return any(fnmatch.fnmatchcase(framework, str(p)) for p in patterns)


def check_fields(check):
    return {"case": check.case.name, "op": check.case.op, "quantity": check.quantity,
            "framework": check.framework, "dtype": check.dtype, "device": check.device,
            "kind": "pinned" if check.pinned else "reference"}


def load(path=MANIFEST_PATH):
    try:
        data = yamlio.load_file(path)
    except yamlio.YamlError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    entries, seen = [], set()
    for i, raw in enumerate((data or {}).get("entries") or []):
        where = f"{path}: entries[{i}]"
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
        spec = None
        if raw.get("versions"):
            try:
                spec = SpecifierSet(str(raw["versions"]))
            except InvalidSpecifier:
                raise ManifestError(f"{where}: key 'versions': {raw['versions']!r} is not a version specifier") from None
        entries.append(Entry(str(raw["id"]), raw["match"], raw["action"], str(raw["reason"]).strip(),
                             str(raw.get("versions", "")), str(raw.get("observed", "")), str(raw.get("link", "")),
                             spec))
    return entries


def find(entries, check, version):
    """The first entry that covers this check at this framework version, or None."""
    return find_fields(entries, check_fields(check), version)


def find_fields(entries, fields, version):
    """The first entry that covers a check described by its fields (see MATCH_FIELDS)."""
    for entry in entries:
        if entry.matches(fields, version):
            return entry
    return None
