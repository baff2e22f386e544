"""Every Python package of the suite ships in the wheel: a subpackage left out of
pyproject.toml's list imports in a checkout and fails only once installed."""
import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_with_an_init_is_packaged():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for top in ("conformance", "reference")
             for init in (ROOT / top).rglob("__init__.py") if "__pycache__" not in init.parts}
    assert found - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"
