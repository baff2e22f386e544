"""The JSON Schemas: generated from the suite's own schema data, committed where editors find
them (and not stale), and every shipped case file and a real results file valid against them."""
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conformance import schemas
from conformance.cases import yamlio

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = {"cases": ROOT / "docs/schema/case-file.schema.json", "results": ROOT / "docs/schema/results.schema.json"}


@pytest.mark.parametrize("kind", sorted(COMMITTED))
def test_the_committed_schema_is_the_generated_one(kind):
    assert COMMITTED[kind].read_text() == schemas.render(kind), (
        f"regenerate: xent-conformance schema {kind} -o {COMMITTED[kind].relative_to(ROOT)}")


@pytest.mark.parametrize("path", sorted((ROOT / "cases").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_case_file_is_valid_and_names_its_schema(path):
    text = path.read_text()
    up = "../" * len(path.relative_to(ROOT).parts[:-1])  # cases/peers/x.yaml names ../../docs/...
    assert text.startswith(f"# yaml-language-server: $schema={up}docs/schema/case-file.schema.json\n")
    jsonschema.validate(yamlio.load(text), schemas.case_file_schema())


@pytest.mark.parametrize("fragment", ["op: sigmoid_xent", "options: {reduce: sum}", "dtypes: [float32, float32]",
                                      "inputs: {logits: {generate: normal, shape: [2], seed: -1}, labels: [1, 0]}"])
def test_the_case_schema_refuses_what_validate_refuses(fragment):
    case = {"name": "x", "op": "sigmoid_cross_entropy", "inputs": {"logits": [1.0, 2.0], "labels": [1.0, 0.0]}}
    case.update(yamlio.load(fragment))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema": 1, "cases": [case]}, schemas.case_file_schema())


@pytest.mark.parametrize("word", ["inf", "-inf", "+Inf", "nan", "NaN"])
def test_the_case_schema_takes_the_infinities_the_loader_reads_as_an_editor_sees_them(word):
    """An editor reads YAML 1.2, where `inf` is a string (`.inf` the number); the loader reads both."""
    case = {"name": "x", "op": "sparse_softmax_cross_entropy", "inputs": {"logits": [[word, 1.0]], "labels": [1]}}
    jsonschema.validate({"schema": 1, "cases": [case]}, schemas.case_file_schema())
    case["inputs"]["logits"] = [["infinite", 1.0]]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema": 1, "cases": [case]}, schemas.case_file_schema())


def test_a_results_file_is_valid_against_the_results_schema(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "conformance/pytest/suite/test_matrix.py"),
                           "-q", "-p", "no:cacheprovider", "--framework", "numpy", "--cases",
                           str(ROOT / "cases/edges.yaml"), "--results", str(tmp_path / "r.json")],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:]
    document = json.loads((tmp_path / "r.json").read_text())
    assert any(r["max_ulp_err"] in ("inf", "nan") or r["outcome"] == "skipped" for r in document["results"])
    jsonschema.validate(document, schemas.results_schema())
