"""CI fleets: `run --shard K/N` splits the matrix into disjoint parts whose merged results are
those of one run."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path, folder, *args):
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--framework", "numpy", "--workers", "1",
                           "--history", "", "--results-dir", str(tmp_path / folder), *args, "--", "--cases",
                           str(ROOT / "cases/article.yaml")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return tmp_path / folder / "conformance.json"


def outcomes(path):
    return {r["id"]: (r["outcome"], r["reason"], r["max_ulp_err"]) for r in json.loads(path.read_text())["results"]}


def test_shards_are_disjoint_and_merge_into_one_run(tmp_path):
    whole = outcomes(run(tmp_path, "whole"))
    parts = [run(tmp_path, f"shard-{k}", "--shard", f"{k}/3") for k in (1, 2, 3)]
    sizes = [len(outcomes(p)) for p in parts]
    assert all(sizes) and sum(sizes) == len(whole)
    done = subprocess.run([sys.executable, "-m", "conformance", "merge", "-o", str(tmp_path / "merged.json"),
                           *map(str, parts)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert outcomes(tmp_path / "merged.json") == whole


def test_a_malformed_shard_is_refused_with_one_line():
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--shard", "4/3"], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 2 and "--shard 4/3" in done.stderr and "Traceback" not in done.stderr
