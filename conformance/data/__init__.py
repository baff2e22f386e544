"""Data that ships with the package: the known-divergence manifest, the tolerance table and
the case files (in a checkout they are the repository's cases/; in an installed package, a
copy made when the wheel is built)."""
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "divergences.yaml"
TOLERANCES = HERE / "tolerances.yaml"


def cases_dir() -> Path:
    """The case files this installation runs by default."""
    checkout = HERE.parent.parent / "cases"
    packaged = HERE.parent / "_cases"
    return checkout if (checkout / "article.yaml").is_file() else packaged
