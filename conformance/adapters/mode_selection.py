"""`--modes`: the names a user gave, and the modes the frameworks of a process declare, so a
mode that none of them runs is refused by name (a typo would otherwise skip every check).
Which modes run is api.select_modes; this module reads the option and the declarations."""
from __future__ import annotations

from typing import Iterable

from conformance import adapters

# Set by `xent-conformance run` for its processes: each has some of the run's frameworks, so the
# run as a whole, not each process, refuses a mode that none of them declares.
CHECKED_BY_RUN = "XENT_CONFORMANCE_MODES_CHECKED_BY_RUN"


def mode_names(values: Iterable[str]) -> list[str]:
    """`--modes eager,jit --modes xla` -> ['eager', 'jit', 'xla']."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def declared_modes(framework_ids: Iterable[str]) -> set[str]:
    """Every mode some capability of these frameworks (or their compositions) declares, among
    those that load here."""
    found: set[str] = set()
    for framework in framework_ids:
        try:
            adapter = adapters.load(framework)
        except (adapters.Unavailable, adapters.AdapterError):
            continue
        for each in (adapter, adapter.composed()):
            for capability in (each.capabilities.values() if each is not None else ()):
                found.update(capability.modes)
    return found


def refusal(modes: list[str], declared: set[str], where: str) -> str:
    """The one line refusing the modes no framework declares ('' when every one is declared)."""
    unknown = [mode for mode in modes if mode not in declared]
    if not unknown:
        return ""
    which = "that mode" if len(unknown) == 1 else "those modes"
    return (f"--modes {','.join(unknown)}: no framework {where} runs {which} "
            f"(theirs: {', '.join(sorted(declared)) or 'none could be loaded'})")
