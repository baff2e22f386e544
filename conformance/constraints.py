"""Framework pins for an upgrade gate: read a constraints file, install its pins.

`constraints.txt` holds the exact versions a baseline is taken with; a candidates file moves
some of them. The extras in pyproject.toml are ranges, so any published version inside them
installs under `pip -c`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement


class ConstraintsError(Exception):
    """A constraints file that cannot be read: str() names the file and the line."""


def read_pins(path: str | Path) -> list[Requirement]:
    """The requirements of a pip constraints file (comments and blank lines skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConstraintsError(f"{path}: cannot read ({exc.strerror})") from None
    pins = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            pins.append(Requirement(text))
        except InvalidRequirement:
            raise ConstraintsError(f"{path}:{number}: not a requirement: {text!r}") from None
    return pins


def install(path: str | Path) -> int:
    """pip-install every package the file pins, at its pinned version, into this environment."""
    names = [pin.name for pin in read_pins(path)]
    command = [sys.executable, "-m", "pip", "install", "-c", str(path), *names]
    print(f"== installing the pins of {path}: {' '.join(names)}", flush=True)
    # tox applies the baseline through PIP_CONSTRAINT; the candidates replace it here.
    environment = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    return subprocess.call(command, env=environment)
