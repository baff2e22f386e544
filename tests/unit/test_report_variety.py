"""The report renders every results file the suite can write: the full matrix's variety
(tests/unit/results_variety.py, from a seed), in markdown and HTML, with and without
matplotlib; numbers read through one helper (results.records.read_number) whatever form the
file holds them in ("inf", "-inf", "nan", null, other strings); and the commands the report
prints (the one `run` suggests, each failure's rerun command) work.
"""
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from conformance import cli, frameworks, schemas
from conformance.cases import load_case_file
from conformance.core import checks
from conformance.core import manifest as divergences
from conformance.report import manifest_doc, plots, render, reproduce
from conformance.results import records as results
from tests.unit.results_variety import (FRAMEWORKS, MODES, NUMBER_FORMS, ODD_FORMS, form_of, variety_document,
                                        variety_records, write_variety)

REPO = Path(__file__).resolve().parents[2]
SEEDS = (0, 1, 2)
SECTIONS = ("Environment", "Pictures", "Accuracy", "Matrix", "Compiled and eager", "Undefined input", "Sources",
            "Known divergences", "Failures", "Skipped checks")


# --- the one reader of numbers ----------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (1.5, 1.5), (3, 3.0), (0, 0.0), (-2.5e-9, -2.5e-9), ("inf", math.inf), ("-inf", -math.inf), ("1e3", 1000.0),
    (None, None), (True, None), (False, None), ("", None), ("n/a", None), ([1.0], None), ({"ulp": 1}, None),
    (np.float32(0.5), 0.5), (np.int64(7), 7.0), (10 ** 400, math.inf), (-(10 ** 400), -math.inf)])
def test_read_number_reads_every_form_a_results_file_holds(value, expected):
    assert results.read_number(value) == expected


def test_read_number_reads_back_what_number_writes():
    assert math.isnan(results.read_number("nan")) and math.isnan(results.read_number(float("nan")))
    for value in (0.0, -0.0, 1e-300, 1.5, 1e300, math.inf, -math.inf):
        assert results.read_number(json.loads(json.dumps(results.number(value)))) == value


# --- the fixture is the matrix's variety ------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_the_variety_covers_every_framework_quantity_outcome_device_and_value_form(seed):
    records, forms = variety_records(seed, odd=True)
    processes = [r for r in records if r["kind"] == "process"]
    assert all(r["outcome"] == "error" and r["dtype"] is None for r in processes)
    assert {r["device"] for r in processes} == {"cpu", "cuda"} and any(r.get("rerun") for r in processes)
    records = [r for r in records if r["kind"] != "process"]
    assert {r["framework"] for r in records} == set(FRAMEWORKS) and "example-kernel" in FRAMEWORKS
    assert {r["quantity"] for r in records} == set(checks.QUANTITIES)
    assert {r["device"] for r in records} == {"cpu", "cuda"}
    for key, values in (("framework", FRAMEWORKS), ("quantity", checks.QUANTITIES)):
        for value in values:  # each framework, and each quantity, with every outcome
            assert {r["outcome"] for r in records if r[key] == value} == set(results.OUTCOMES), value
    every_form = {form_of(v) for v in NUMBER_FORMS + ODD_FORMS}
    fields = ("max_ulp_err", "max_abs_err", "seconds", "tolerance.ulp", "tolerance.abs", "tolerance.rel",
              "tolerance.bound_at_worst", "expected.worst", "expected.values", "actual.worst", "actual.values",
              "modes.max_ulp_err", "modes.rms_err", "golden.printed.values", "golden.reference.values")
    for field in fields:
        assert forms.seen[field] == every_form, field
    modes = [r["modes"] for r in records if r.get("modes")]
    assert {frozenset(m) for m in modes} >= {frozenset(MODES[f]) for f in MODES}  # paddle's: no eager
    assert {m.get("same_as_eager") for ms in modes for m in ms.values()} == {True, False, None}
    assert any("raised" in m and m["max_ulp_err"] is None for ms in modes for m in ms.values())
    for key in ("golden", "manifest", "manifest_also", "refused", "failure", "undefined"):
        assert any(r.get(key) for r in records), key
    assert {r["golden"]["verdict"] for r in records if r.get("golden")} > {"exact", "inexact"}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_variety_is_a_valid_results_file(tmp_path, seed):
    path = write_variety(tmp_path / "variety.json", seed)
    document = results.read(path)  # what every command reads first
    assert len(document["results"]) == len({r["id"] for r in document["results"]})
    jsonschema.validate(json.loads(json.dumps(document)), schemas.results_schema())


# --- the report renders it ----------------------------------------------------------------------

def _render(document: dict, fmt: str, output: Path) -> str:
    return render.render(document["environment"], document["results"], fmt, output=output)


@pytest.mark.parametrize("with_matplotlib", [True, False], ids=["matplotlib", "no-matplotlib"])
@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("seed", SEEDS)
def test_the_report_renders_every_value_form(tmp_path, monkeypatch, seed, fmt, with_matplotlib):
    if with_matplotlib and not plots.available()[0]:
        pytest.skip("[not-installed] matplotlib: pip install -e '.[report]'")
    if not with_matplotlib:
        monkeypatch.setattr(plots, "available", lambda: (False, "matplotlib is not available (test)"))
    document = variety_document(seed, odd=seed == SEEDS[-1])
    text = _render(document, fmt, tmp_path / f"report.{fmt}")
    for section in SECTIONS:
        assert section in text
    failing = results.failing(document["results"])
    assert f"Failures ({len(failing)})" in text
    for framework in FRAMEWORKS:
        assert f"{framework}</code>" in text if fmt == "html" else f"`{framework}`" in text
    for word in ("inf ULP", "-inf ULP", "nan ULP"):  # the error of a failure, as the file holds it
        assert word in text
    assert not re.search(r"\bNone\b|'(inf|nan)'", text)  # no Python repr where a number is missing
    assert ("Pictures omitted" in text) != with_matplotlib
    if fmt == "html":
        assert text.count("<section") == text.count("</section>") and text.rstrip().endswith("</html>")
        targets = set(re.findall(r'href="#([^"]+)"', text))
        assert targets and targets <= set(re.findall(r' id="([^"]+)"', text))  # every link in the page lands


def test_a_mode_error_written_as_inf_reaches_every_section():
    """The issue: record["modes"][mode]["max_ulp_err"] == "inf" (keras-jax, tinygrad, ...)."""
    document = variety_document(0)
    record = next(r for r in document["results"] if r["framework"] == "keras-jax" and r["outcome"] == "failed")
    record.update(max_ulp_err="inf", max_abs_err="nan",
                  tolerance={"ulp": 4, "abs": 0.0, "rel": 4.8e-7, "bound_at_worst": "inf"},
                  modes={"eager": {"passed": True, "max_ulp_err": 1, "rms_err": "nan"},
                         "jit": {"passed": False, "max_ulp_err": "inf", "rms_err": "inf", "same_as_eager": False}})
    text = render.render(document["environment"], [record], "md", with_plots=False)
    modes = text.split("## Compiled and eager")[1].split("\n## ")[0]
    assert f"| `{record['id']}` | `jit` | 1 | inf | passed | failed | rejects |" in modes
    failure = text.split(f"FAILED {record['id']}")[1]
    assert "inf ULP, nan absolute; tolerance ulp 4, abs 0, rel 4.8e-07, bound_at_worst inf" in failure
    assert "eager passed (1 ULP), jit failed (inf ULP)" in failure


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_the_command_run_suggests_renders_the_full_matrix(tmp_path, fmt):
    """`run` ends with `next: xent-conformance report RESULTS --format html -o REPORT` (orchestrate.py)."""
    source = write_variety(tmp_path / "conformance.json", 0)
    out = tmp_path / f"report.{fmt}"
    # python -m conformance: the console script's main (pyproject.toml), from this tree
    done = subprocess.run([sys.executable, "-m", "conformance", "report", str(source), "--format", fmt, "-o", str(out)],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and not done.stderr.count("Traceback"), done.stderr
    assert done.stdout.strip() == f"report -> {out}" and out.stat().st_size > 100_000


def test_the_divergences_page_reads_the_variety():
    records = variety_document(1, odd=True)["results"]
    text = manifest_doc.render(divergences.load(), records)
    assert "| framework | op | dtype | modes | checks |" in text  # where each entry matched, from the records


# --- the rerun commands the report prints ---------------------------------------------------------

def test_a_process_that_died_is_a_failure_with_a_run_command():
    document = variety_document(0)
    text = render.render(document["environment"], document["results"], "md", with_plots=False)
    failure = text.split("ERROR paddle::process::paddle::cpu")[1].split("\n### ")[0]
    assert "**process:** `paddle` · process-died · exit status -6 (SIGABRT)" in failure
    command = "xent-conformance run --framework paddle --results-dir results/rerun"
    assert command in failure
    args = cli.parser().parse_args(shlex.split(command)[1:])  # a command the CLI takes
    assert args.framework == ["paddle"] and args.results_dir == "results/rerun"
    matrix = text.split("## Matrix")[1].split("\n## ")[0]
    assert "| `(process)` |  | cpu |" in matrix  # its rows: no dtype, the device it would have run on
    newer = next(r for r in document["results"] if r["kind"] == "process" and r.get("rerun"))
    assert f"ERROR {newer['id']}" in text and newer["rerun"] in text.split(f"ERROR {newer['id']}")[1]


def _article_record(framework: str) -> dict:
    cases = load_case_file(REPO / "cases" / "article.yaml")
    check = next(c for c in checks.generate(cases, [framework]) if c.device == "cpu" and not c.pinned)
    return {"id": check.id, "case": check.case.name, "framework": framework, "dtype": check.dtype,
            "device": check.device, "quantity": check.quantity, "kind": "reference",
            "file": str(REPO / "cases" / "article.yaml")}


def _run_printed(command: str, *extra: str) -> subprocess.CompletedProcess:
    """Run a printed command as a shell would: VAR=value words first, `python` this interpreter."""
    words = shlex.split(command)
    env = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "python"
    return subprocess.run([sys.executable, *words[1:], *extra], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **env})


def test_the_rerun_command_of_a_failure_runs_that_check():
    done = _run_printed(reproduce.reproduce_command(_article_record("numpy")), "-q")
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: the check itself failed
    assert re.search(r"^1 (passed|failed|xfailed|xpassed) in ", done.stdout, re.M), done.stdout  # that check only


@pytest.mark.parametrize("framework", frameworks.OWN_PROCESSES)
def test_the_rerun_command_of_a_framework_with_its_own_process_names_that_process(framework):
    command = reproduce.reproduce_command(_article_record(framework))
    assert command.startswith(f"{frameworks.PROCESS_VARIABLE}={framework} python -m pytest ")
    done = _run_printed(command, "--collect-only", "-q")  # collected, not run: paddle need not be installed
    assert done.returncode == 0 and "1 test collected" in done.stdout, done.stdout + done.stderr
