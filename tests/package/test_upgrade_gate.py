"""The upgrade gate can install what it is asked to try: pip resolves the package's extras under
a candidates file that moves torch, jax and tensorflow to other published versions (a dry
run: nothing is installed; about 20 s, the index's metadata only)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = {"torch": "2.14.1", "jax": "0.10.1", "jaxlib": "0.10.1", "tensorflow": "2.20.0", "tf-keras": "2.20.1"}


def test_pip_would_install_the_candidate_pins(tmp_path):
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("".join(f"{name}=={version}\n" for name, version in CANDIDATES.items()))
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                           "--report", str(report), "-c", str(candidates), f"xent-conformance[all] @ {ROOT.as_uri()}"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    chosen = {item["metadata"]["name"].replace("_", "-").lower(): item["metadata"]["version"]
              for item in json.loads(report.read_text())["install"]}
    assert {name: chosen.get(name) for name in CANDIDATES} == CANDIDATES
