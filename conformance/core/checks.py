"""One check = a case x framework x dtype x device x quantity; its id is stable across runs.

Which quantities there are, and which cases get each: quantities.py.
"""
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from conformance import frameworks
from conformance.cases import Case, Pinned
from conformance.core import quantities
from conformance.sharded.layouts import Layout

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Check:
    case: Case
    framework: str
    dtype: str
    device: str
    quantity: str  # a name in quantities.QUANTITIES
    pinned: Pinned | None = None  # compared with a source's number instead of the reference
    layout: Layout | None = None  # the inputs split across ranks; None: one process holds them whole

    @property
    def id(self) -> str:
        kind = "::pinned" if self.pinned else ""
        # an unsharded check keeps the id it had before layouts existed
        layout = f"::{self.layout.name}" if self.layout else ""
        return f"{self.case.name}::{self.quantity}::{self.framework}::{self.dtype}::{self.device}{kind}{layout}"

    @property
    def param_id(self) -> str:
        """The pytest id: carries the framework id, so `-k keras` selects Keras checks."""
        return f"{self.case.name}-{self.framework}-{self.dtype}-{self.device}-{self.quantity}" + (
            "-pinned" if self.pinned else "") + (f"-{self.layout.name}" if self.layout else "")


QUANTITIES = quantities.NAMES  # in the order checks are generated


def cotangent(case: Case, dtype: str, shape: tuple[int, ...], salt: str = "") -> np.ndarray:
    """The seeded random cotangent of a case's losses (or, salted, a direction for forward
    mode), as float64 values the dtype holds. A scalar one (a reduced loss) lies in
    +-[2, 4]: far from 0 and from +-1, so that a gradient scaled by c twice (c^2) is told from
    one scaled once in every dtype."""
    from reference.dtypes import round_to

    rng = np.random.default_rng(zlib.crc32(f"{case.name}|{dtype}{salt}".encode()))
    if shape == ():
        return round_to(np.asarray(rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 4.0)), dtype)
    return round_to(rng.normal(0.0, 1.0, shape), dtype)


def direction(case: Case, dtype: str) -> np.ndarray:
    """The seeded direction of a forward-mode derivative: one value per prediction element."""
    return cotangent(case, dtype, case.prediction.shape, salt="|direction")


def generate(cases: Iterable[Case], framework_ids: Sequence[str], devices: Sequence[str] = DEVICES) -> Iterator[Check]:
    """Every check of the cases: per case, framework, device and dtype, each quantity the case
    gets (quantities.py, in its order); then the case's pinned numbers. A framework that
    declares layouts (frameworks.layouts_of) is a sharded implementation, with no computation
    on whole inputs: it gets instead each of the case's layouts on an axis it takes, by the same
    quantities (its one-rank layouts are the unsharded baseline)."""
    for case in cases:
        checked = {layout: [q.name for q in quantities.of_case(case, layout)] for layout in (None, *case.layouts)}
        for framework in framework_ids:
            axes = frameworks.layouts_of(framework)
            sharded: list[Layout | None] = [layout for layout in case.layouts if layout.axis in axes]
            layouts = sharded if axes else [None]
            for device in devices:
                for layout in layouts:
                    for dtype in case.dtypes:
                        for quantity in checked[layout]:
                            yield Check(case, framework, dtype, device, quantity, layout=layout)
                if not axes:
                    for pinned in case.pinned:
                        yield Check(case, framework, pinned.dtype, device, pinned.quantity, pinned)
