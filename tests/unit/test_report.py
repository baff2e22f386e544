"""report (markdown and HTML) and diff, from small synthetic results files: no framework needed.

matplotlib is optional: without it the report renders with its pictures omitted and a note,
and only the tests that look at the pictures skip.
"""
import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.core import manifest as divergences
from conformance.report import render as report
from conformance.report import reproduce
from conformance.results import records as results
from conformance.cases import load_case_file
from conformance.core.checks import generate

REPO = Path(__file__).resolve().parents[2]
VERSIONS = {"numpy": "2.4.6", "torch": "2.13.0+cpu", "jax": "0.10.2", "keras-jax": "3.15.1"}
NO_MATPLOTLIB = "matplotlib is not installed: the report omits its pictures (pip install -e .[report])"


def manifest_entry():
    return divergences.load()[0]


def record(case, framework, outcome="passed", dtype="float32", quantity="loss", op="sigmoid_cross_entropy",
           ulp=1.0, **extra):
    base = {
        "id": f"{case}::{quantity}::{framework}::{dtype}::cpu", "case": case, "op": op, "quantity": quantity,
        "kind": "reference", "options": {}, "framework": framework, "framework_version": VERSIONS.get(framework),
        "variant": None,
        "dtype": dtype, "device": "cpu", "outcome": outcome, "reason": None,
        "expected": {"shape": [2], "dtype": "float64", "worst": 0.3132616875182228, "index": [1],
                     "values": [0.1, 0.3132616875182228]},
        "actual": {"shape": [2], "dtype": dtype, "worst": 0.31326166, "index": [1], "values": [0.1, 0.31326166]},
        "max_abs_err": 1e-8, "max_ulp_err": ulp, "tolerance": {"ulp": 4.0, "abs": 0.0, "rel": 4.8e-7},
        "message": "", "source": None, "file": str(REPO / "cases" / "synthetic.yaml"), "seconds": 0.01,
    }
    base.update(extra)
    return base


def synthetic_records():
    entry = manifest_entry()
    return [
        record("logits-small", "numpy", ulp=0.0),
        record("logits-small", "torch", ulp=2.0),
        record("logits-small", "torch", quantity="grad_logits", ulp=1.0),
        record("logits-small", "jax", "failed", ulp=1700.0,
               message="jax sigmoid_cross_entropy loss float32 on cpu\n1/2 elements outside tolerance"),
        record("logits-small", "keras-jax", "xfailed", reason="manifest", manifest=entry.id, ulp=5.0,
               message=f"{entry.id}: {entry.reason}"),
        record("logits-small", "tensorflow", "skipped", reason="not-installed", expected=None, actual=None,
               max_ulp_err=None, max_abs_err=None, message="tensorflow cannot be imported"),
        record("probs-small", "torch", op="binary_crossentropy", dtype="float64", ulp="inf", outcome="failed",
               message="NaN where the reference is finite"),
    ]


def environment():
    return {"python": "3.11.7", "platform": "Linux-test", "date": "2026-01-01T00:00:00+00:00",
            "frameworks": {"numpy": {"version": "2.4.6", "devices": ["cpu"]},
                           "torch": {"version": "2.13.0+cpu", "devices": ["cpu"]},
                           "jax": {"version": "0.10.2", "devices": ["cpu"]},
                           "keras-jax": {"version": "3.15.1", "devices": ["cpu"], "backend": "jax"},
                           "tensorflow": {"version": None, "unavailable": "No module named 'tensorflow'"}}}


def write(path, records, env=None):
    results.write(path, env if env is not None else environment(), records)
    return path


def run(*args):
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO)


def has_matplotlib():
    from conformance.report import plots

    return plots.available()[0]


# --- report -----------------------------------------------------------------------------------

def test_markdown_report_has_every_section(tmp_path):
    source = write(tmp_path / "results.json", synthetic_records())
    out = tmp_path / "out" / "report.md"
    done = run("report", source, "--format", "md", "-o", out)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    for heading in ("## Environment", "## Pictures", "## Accuracy", "## Matrix", "## Known divergences",
                    "## Failures (2)", "## Skipped checks"):
        assert heading in text
    assert "2.13.0+cpu" in text and "2026-01-01" in text  # framework versions and the date
    assert "| `sigmoid_cross_entropy` | loss |" in text  # the accuracy table, libm style
    entry = manifest_entry()
    assert entry.id in text and entry.reason[:40] in text  # the divergence, with its reason
    # each failure names its input and a command that runs exactly that check
    assert "`logits-small` in `cases/synthetic.yaml`" in text
    assert ("python -m pytest 'conformance/pytest/suite/test_matrix.py::test_check[logits-small-jax-float32-cpu-loss]' "
            "--cases cases/synthetic.yaml --require jax") in text
    if has_matplotlib():
        for key in ("curves", "gradients", "heatmap"):
            assert f"](report-{key}.png)" in text
            assert (out.parent / f"report-{key}.png").read_bytes().startswith(b"\x89PNG")
    else:
        assert "Pictures omitted" in text


def test_html_report_is_one_readable_self_contained_file(tmp_path):
    source = write(tmp_path / "results.json", synthetic_records())
    out = tmp_path / "report.html"
    done = run("report", source, "--format", "html", "-o", out)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert "<table" in page and "<pre><code>" not in page and "<body><pre>" not in page
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page.split("<main>")[0])  # no external CSS or script
    assert not re.search(r"""<(img|script|link)[^>]+(src|href)=["']https?:""", page)
    assert "<script" not in page
    assert list(tmp_path.glob("*.png")) == []  # nothing written beside an HTML report
    assert 'class="fail' in page and "logits-small" in page


def test_html_report_embeds_the_pictures_as_png_data(tmp_path):
    pytest.importorskip("matplotlib", reason=NO_MATPLOTLIB)
    source = write(tmp_path / "results.json", synthetic_records())
    out = tmp_path / "report.html"
    assert run("report", source, "--format", "html", "-o", out).returncode == 0
    page = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n") for data in images)


def test_report_renders_without_matplotlib(monkeypatch):
    from conformance.report import plots

    monkeypatch.setattr(plots, "available", lambda: (False, "matplotlib is not available (test)"))
    page = report.render(environment(), synthetic_records(), "html")
    assert "Pictures omitted: matplotlib is not available (test)" in page
    assert "data:image/png" not in page and "Known divergences" in page
    text = report.render(environment(), synthetic_records(), "md")
    assert "Pictures omitted" in text and "## Failures (2)" in text


def test_report_accepts_minimal_records_and_several_files(tmp_path):
    minimal = {"id": "c::loss::torch::float32::cpu", "case": "c", "op": "sigmoid_cross_entropy", "quantity": "loss",
               "framework": "torch", "dtype": "float32", "device": "cpu", "outcome": "passed", "max_ulp_err": 1.0}
    a = write(tmp_path / "a.json", [minimal], {"frameworks": {}})
    b = write(tmp_path / "b.json", [dict(minimal, id="c::loss::jax::float32::cpu", framework="jax")],
              {"frameworks": {"jax": {"version": "0.10.2"}}, "date": "2026-02-02"})
    done = run("report", a, b)
    assert done.returncode == 0, done.stderr
    assert "Merged from 2 results files" in done.stdout and "0.10.2" in done.stdout


def test_reproduce_command_uses_the_pytest_id_of_the_check():
    cases = load_case_file(REPO / "cases" / "article.yaml")
    for check in generate(cases, ["torch", "keras-jax"]):
        fields = {"case": check.case.name, "framework": check.framework, "dtype": check.dtype,
                  "device": check.device, "quantity": check.quantity, "kind": "pinned" if check.pinned else "reference",
                  "id": check.id, "file": str(REPO / "cases" / "article.yaml")}
        assert reproduce.pytest_id(fields) == check.param_id
    command = reproduce.reproduce_command(dict(fields, framework="keras-jax"))
    assert command.startswith("KERAS_BACKEND=jax python -m pytest ") and "--framework keras-jax" in command


def test_a_plugin_framework_id_is_a_column_of_the_matrix_and_the_accuracy_table():
    records = [record("logits-small", "example-numpy", ulp=3.0), record("logits-small", "aa-kernel", ulp=5.0),
               record("logits-small", "torch", ulp=2.0), record("logits-small", "numpy", ulp=0.0)]
    text = report.render(environment(), records, "md", with_plots=False)
    accuracy = text.split("## Accuracy")[1].split("\n## ")[0]
    matrix = text.split("## Matrix")[1].split("\n## ")[0]
    # built-in ids first, in conformance.frameworks order; plug-in ids after them, alphabetically
    assert "| op | quantity | numpy | torch | aa-kernel | example-numpy |" in accuracy
    assert "| `sigmoid_cross_entropy` | loss | 0 | 2 | 5 | 3 |" in accuracy
    assert "| op | dtype | device | numpy | torch | aa-kernel | example-numpy |" in matrix
    row = "| `sigmoid_cross_entropy` | float32 | cpu | 1P · 0 ulp | 1P · 2 ulp | 1P · 5 ulp | 1P · 3 ulp |"
    assert row in matrix
    assert "| `example-numpy` |" in text.split("## Environment")[1].split("\n## ")[0]


def test_the_modes_section_lists_where_compiled_and_eager_disagree():
    agree = dict(record("logits-small", "torch", ulp=1.0), modes={
        "eager": {"passed": True, "max_ulp_err": 1.0}, "compile": {"passed": True, "max_ulp_err": 1.0,
                                                                   "same_as_eager": True}})
    split = dict(record("logits-big", "torch", ulp=40.0), modes={
        "eager": {"passed": True, "max_ulp_err": 1.0}, "compile": {"passed": False, "max_ulp_err": 40.0,
                                                                   "same_as_eager": False}})
    text = report.render(environment(), [agree, split], "md", with_plots=False)
    section = text.split("## Compiled and eager")[1].split("\n## ")[0]
    assert "| `torch` | `compile` | 2 | 1 | 1 | 1 |" in section
    assert f"| `{split['id']}` | `compile` | 1 | 40 | passed | failed | rejects |" in section
    assert agree["id"] not in section


def test_known_divergence_shows_what_was_observed():
    entry = manifest_entry()
    text = report.render(environment(), synthetic_records(), "md", with_plots=False)
    section = text.split(f"### {entry.id}")[1].split("\n## ")[0]
    assert "0.31326166" in section  # the value the framework returned
    if entry.link:
        assert entry.link in section


# --- diff -------------------------------------------------------------------------------------

def test_diff_of_identical_results_exits_0(tmp_path):
    a = write(tmp_path / "a.json", synthetic_records())
    done = run("diff", a, a)
    assert done.returncode == 0
    assert "0 regression(s), 0 change(s)" in done.stdout


def test_diff_of_a_broken_framework_exits_1_naming_its_checks(tmp_path):
    base_records = [record("one", "torch"), record("two", "torch", quantity="grad_logits"), record("one", "jax"),
                    record("one", "numpy")]
    broken = [dict(r, outcome="failed", max_ulp_err=5000.0, message="torch returned garbage")
              if r["framework"] == "torch" else r for r in base_records]
    env = environment()
    new_env = json.loads(json.dumps(env))
    new_env["frameworks"]["torch"]["version"] = "9.9.9"
    base = write(tmp_path / "base.json", base_records, env)
    new = write(tmp_path / "new.json", broken, new_env)
    done = run("diff", base, new, "--json", tmp_path / "diff.json")
    assert done.returncode == 1
    out = done.stdout
    assert "2 regression(s)" in out.splitlines()[0]
    assert "torch: 2.13.0+cpu -> 9.9.9" in out
    assert "torch: 2 regression(s)" in out
    regressions = [line for line in out.splitlines() if "REGRESSION" in line]
    assert len(regressions) == 2 and all("::torch::" in line and "now-failing" in line for line in regressions)
    assert "one::loss::torch::float32::cpu" in out and "two::grad_logits::torch::float32::cpu" in out
    assert "::jax::" not in out and "::numpy::" not in out
    data = json.loads((tmp_path / "diff.json").read_text())
    assert data["regressions"] == 2 and data["by_framework"] == {"torch": {"regressions": 2, "changes": 2}}
    assert {c["framework"] for c in data["changes"]} == {"torch"}
    assert data["versions"] == [{"framework": "torch", "before": "2.13.0+cpu", "after": "9.9.9"}]


def test_diff_names_each_kind_of_change(tmp_path):
    base = write(tmp_path / "base.json", [
        record("gone", "torch"),
        record("skip-now", "torch"),
        record("fixed", "jax", "xfailed", manifest="some-entry"),
        record("grew", "numpy", ulp=1.0),
        record("loosened", "numpy", ulp=1.0),
    ])
    new = write(tmp_path / "new.json", [
        record("skip-now", "torch", "skipped", reason="not-installed", message="torch cannot be imported"),
        record("fixed", "jax", "xpassed", manifest="some-entry"),
        record("grew", "numpy", ulp=3.0),
        record("loosened", "numpy", ulp=30.0, tolerance={"ulp": 64.0, "abs": 0.0, "rel": 4.8e-7}),
        record("brand-new", "numpy"),
    ])
    done = run("diff", base, new, "--json", tmp_path / "d.json")
    assert done.returncode == 1
    kinds = {c["id"].split("::")[0]: (c["kind"], c["regression"])
             for c in json.loads((tmp_path / "d.json").read_text())["changes"]}
    assert kinds == {
        "gone": ("missing", True),  # a check that vanished
        "skip-now": ("now-skipped", True),
        "fixed": ("fixed-divergence", False),  # a known divergence that disappeared
        "grew": ("error-grew", False),  # grew within its tolerance
        "loosened": ("error-grew", True),  # passes only because its tolerance was widened
        "brand-new": ("new", False),
    }
    assert "[not-installed] torch cannot be imported" in done.stdout
