"""The upgrade gate can move any framework: extras are ranges, exact pins live in
constraints.txt only, and a candidates file that moves torch, jax and tensorflow to other
published versions resolves inside the extras."""
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

from conformance import constraints

ROOT = Path(__file__).resolve().parents[2]
# Published versions other than the baseline's (PyPI, 2026-11): what a gate would try.
CANDIDATES = "torch==2.14.1\njax==0.10.1\njaxlib==0.10.1\ntensorflow==2.20.0\ntf-keras==2.20.1\nkeras==3.15.1\n"


def extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [requirement for group in project["optional-dependencies"].values() for requirement in group]


def test_the_extras_pin_nothing_exactly():
    from packaging.requirements import Requirement

    for text in extras():
        assert "==" not in str(Requirement(text).specifier), f"{text}: exact pins belong in constraints.txt"


@pytest.mark.parametrize("source", ["constraints.txt", "candidates"])
def test_every_pin_lies_inside_the_extras(tmp_path, source):
    from packaging.requirements import Requirement

    path = ROOT / "constraints.txt" if source == "constraints.txt" else tmp_path / "candidates.txt"
    if source == "candidates":
        path.write_text(CANDIDATES)
    ranges = {}
    for text in extras():
        requirement = Requirement(text)
        ranges.setdefault(requirement.name, []).append(requirement.specifier)
    for pin in constraints.read_pins(path):
        (version,) = [Version(s.version) for s in pin.specifier]
        for specifier in ranges.get(pin.name, []):
            assert specifier.contains(version), f"{pin} is outside the extra's range {specifier}"


def test_a_malformed_constraints_file_names_its_line(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("# pins\ntorch==2.13.0\ntorch is great\n")
    with pytest.raises(constraints.ConstraintsError, match=r"c.txt:3: not a requirement"):
        constraints.read_pins(path)
