"""The report's Layouts section (framework x layout counts, and the bytes that crossed ranks
against the O(N) floor), the layout in failure listings and rerun commands, and every results
file the suite writes rendered without a traceback."""
import json
import math
from pathlib import Path

import pytest

from conformance import cli
from conformance.cases import load_case_file
from conformance.core.checks import Check
from conformance.core.runner import base_record
from conformance.report import layouts as layout_section
from conformance.report import render, reproduce
from conformance.report.blocks import Code, Heading, Section, Table
from conformance.report.markdown import to_markdown
from conformance.sharded.layouts import Layout
from tests.unit.results_variety import write_variety

REPO = Path(__file__).resolve().parents[2]
SHARDED_CASES = REPO / "cases" / "sharded.yaml"


def sharded(case, framework, axis, ranks, outcome="passed", quantity="loss", ulp=1.0, communication=None,
            **extra):
    layout = {"axis": axis, "ranks": ranks}
    record = {
        "id": f"{case}::{quantity}::{framework}::float32::cpu::{axis}{ranks}", "case": case,
        "op": "sparse_softmax_cross_entropy", "quantity": quantity, "kind": "reference",
        "options": {"reduction": "mean"}, "framework": framework, "framework_version": "1.0", "variant": "exact",
        "dtype": "float32", "device": "cpu", "outcome": outcome, "reason": None,
        "expected": {"shape": [], "dtype": "float64", "worst": 2.5, "index": [], "values": [2.5]},
        "actual": {"shape": [], "dtype": "float32", "worst": 2.5, "index": [], "values": [2.5]},
        "max_abs_err": 1e-8, "max_ulp_err": ulp, "tolerance": {"ulp": 4.0, "abs": 0.0, "rel": 4.8e-7},
        "message": "", "source": None, "file": str(SHARDED_CASES), "undefined": False, "layout": layout,
    }
    if communication is not None:
        record["communication"] = communication
    if outcome == "skipped":
        record.update(reason="not-offered", max_ulp_err=None, max_abs_err=None, expected=None, actual=None)
    record.update(extra)
    return record


def bytes_of(most, floor, **by_collective):
    return {"bytes": by_collective or {"all_reduce": most}, "max_bytes_per_rank": most, "floor_bytes": floor}


def sharded_records():
    """Three frameworks, five layouts (given out of order), every outcome, communication on some."""
    return [
        # torch-dtensor: vocab2 2P 1F 1S (max ULP 3 among the compared), batch2 1P 1K
        sharded("a", "torch-dtensor", "vocab", 2, ulp=3.0, communication=bytes_of(96, 32)),
        sharded("b", "torch-dtensor", "vocab", 2, ulp="nan", outcome="xfailed", quantity="grad_logits",
                communication=bytes_of(160, 32, all_reduce=96, all_gather=64)),
        sharded("b", "torch-dtensor", "vocab", 2, ulp=2.0, communication=bytes_of(64, 32)),
        sharded("c", "torch-dtensor", "vocab", 2, "failed", ulp="inf", message="1/1 elements outside tolerance"),
        sharded("d", "torch-dtensor", "vocab", 2, "skipped"),
        sharded("a", "torch-dtensor", "batch", 2, ulp=0.5),
        sharded("e", "torch-dtensor", "batch", 2, "xfailed", ulp=1e6, manifest="dtensor-batch-mean-of-means"),
        # megatron-core (a plug-in id): vocab1 (one rank: nothing to send), vocab4, sequence2 error
        sharded("a", "megatron-core", "vocab", 1, ulp=0.0, communication=bytes_of(0, 0, all_reduce=0)),
        sharded("a", "megatron-core", "vocab", 4, ulp=1.0, communication=bytes_of(768_000, 32)),
        sharded("a", "megatron-core", "vocab", 4, quantity="rank_agreement", ulp=0.0,
                communication={"bytes": {"all_reduce": 48}, "floor_bytes": "nan"}),
        sharded("f", "megatron-core", "sequence", 2, "error", ulp=None, message="rank 1 died"),
        # jax-sharded: every check of batch2 skipped, one xpassed vocab2
        sharded("a", "jax-sharded", "batch", 2, "skipped"),
        sharded("a", "jax-sharded", "vocab", 2, "xpassed", ulp=0.5),
    ]


def table(blocks, cls):
    found = [b for b in blocks if isinstance(b, Table) and b.cls == cls]
    assert len(found) <= 1
    return found[0] if found else None


def plain(cell):
    return cell.content.text if isinstance(cell.content, Code) else str(cell.content)


def cells_by_row(table_block):
    """{first cell's text: [(text, css class, sub) of each further cell] for each of its rows}."""
    rows = {}
    for row in table_block.rows:
        cells = row[0] if isinstance(row, tuple) else row
        rows.setdefault(plain(cells[0]), []).append([(plain(c), c.cls, c.sub) for c in cells[1:]])
    return rows


def build(records):
    return render.build({"date": "today"}, records, with_plots=False)


# --- the Layouts table ------------------------------------------------------------------------


def test_layouts_table_counts_each_framework_and_layout():
    blocks = build(sharded_records())
    layouts = table(blocks, "layouts")
    assert layouts is not None
    # axis (vocab, batch, sequence) then ranks, whatever order the records came in
    assert layouts.header == ["framework", "vocab1", "vocab2", "vocab4", "batch2", "sequence2"]
    rows = cells_by_row(layouts)
    assert list(rows) == ["jax-sharded", "megatron-core", "torch-dtensor"]
    (dtensor,), (megatron,), (jax,) = rows["torch-dtensor"], rows["megatron-core"], rows["jax-sharded"]
    # the matrix's vocabulary: counts P F E K X, then S; the worst outcome colours the cell; the
    # max ULP error of the reference checks that passed or failed beneath (known divergences left out)
    assert dtensor == [("", "", ""), ("2P 1F 1K 1S", "fail", "inf ulp"), ("", "", ""),
                       ("1P 1K", "known", "0.5 ulp"), ("", "", "")]
    assert megatron == [("1P", "pass", "0 ulp"), ("", "", ""), ("2P", "pass", "1 ulp"), ("", "", ""),
                        ("1E", "fail", "")]
    assert jax[1] == ("1X", "xpass", "")  # a fixed divergence is no accuracy measurement
    assert jax[3][:2] == ("-", "skip")  # nothing ran: the reason in its title, as in the matrix
    assert [b.text for b in blocks if isinstance(b, Heading)].index("Layouts: framework x layout") > \
        [b.text for b in blocks if isinstance(b, Heading)].index("Matrix: op x framework x dtype x device")


def test_communication_table_reads_bytes_against_the_floor():
    rows = cells_by_row(table(build(sharded_records()), "communication"))
    assert set(rows) == {"megatron-core", "torch-dtensor"}  # jax-sharded counted nothing
    columns = ["layout", "checks", "collectives", "bytes", "floor", "median ratio", "max ratio"]
    dtensor = [dict(zip(columns, (text for text, _, _ in row))) for row in rows["torch-dtensor"]]
    # vocab2: three checks counted (96, 160, 64 bytes against 32): median 96, ratios 3, 5, 2
    assert dtensor == [{"layout": "vocab2", "checks": "3", "collectives": "all_gather, all_reduce",
                        "bytes": "96 B", "floor": "32 B", "median ratio": "3x", "max ratio": "5x"}]
    megatron = [dict(zip(columns, (text for text, _, _ in row))) for row in rows["megatron-core"]]
    assert [m["layout"] for m in megatron] == ["vocab1", "vocab4"]
    assert megatron[0]["median ratio"] == "-" and megatron[0]["bytes"] == "0 B"  # one rank: nothing to compare
    # vocab4: 768,000 against 32, and a floor that is no number (the string "nan"): the ratio is NaN
    assert megatron[1]["bytes"] == "384,024 B" and megatron[1]["floor"] == "nan"
    assert megatron[1]["median ratio"] == "nan" and megatron[1]["max ratio"] == "nan"


def test_communication_numbers_fall_back_to_a_total_then_the_sum_by_collective():
    assert layout_section.communication_numbers({"communication": {"bytes": {"all_reduce": 96}, "total_bytes": 96,
                                                                   "floor_bytes": 32}}) == (96, 32, ["all_reduce"])
    assert layout_section.communication_numbers({"communication": {"bytes": {"all_reduce": 96, "broadcast": "inf"},
                                                                   "floor_bytes": 32}})[0] == math.inf
    assert layout_section.communication_numbers({"communication": None}) is None
    assert layout_section.communication_numbers({"communication": {"bytes": "?"}}) == (None, None, [])
    assert layout_section.ratio(64, 0) == math.inf and layout_section.ratio(0, 0) is None
    assert layout_section.median([3.0, None, 1.0, 2.0, 10.0]) == 2.5


def test_no_communication_table_where_nothing_was_counted():
    records = [r for r in sharded_records() if "communication" not in r]
    blocks = build(records)
    assert table(blocks, "layouts") is not None and table(blocks, "communication") is None


def test_results_without_layouts_have_no_layouts_section():
    records = [{**r, "layout": None, "id": r["id"].rsplit("::", 1)[0] + f"::{i}"}
               for i, r in enumerate(sharded_records())]
    records += [{k: v for k, v in records[0].items() if k != "layout"} | {"id": "no-layout-key"}]
    blocks = build(records)
    assert table(blocks, "layouts") is None and table(blocks, "communication") is None
    text = render.render({}, records, "md", with_plots=False)
    assert "Layouts" not in text and "Communication" not in text
    assert "Layouts" not in render.render({}, records, "html", with_plots=False)


def test_a_malformed_layout_is_shown_as_it_stands():
    records = [sharded("a", "torch-dtensor", "vocab", 2), sharded("a", "torch-dtensor", "vocab", 2) | {
        "id": "odd", "layout": {"axis": "tensor"}}, sharded("a", "torch-dtensor", "vocab", 2) | {
        "id": "odd2", "layout": "vocab8", "communication": "lost"}]
    layouts = table(build(records), "layouts")
    assert layouts.header == ["framework", "vocab2", "vocab8", "tensor?"]


# --- the layout wherever a failing check is listed ----------------------------------------------


def test_failures_and_divergences_show_the_layout():
    blocks = build(sharded_records())
    failure = next(b for b in blocks if isinstance(b, Section) and b.cls == "failure"
                   and "c::loss" in b.blocks[0].text)
    text = to_markdown([failure])
    assert "FAILED c::loss::torch-dtensor::float32::cpu::vocab2" in text
    assert "layout vocab2 (vocab over 2 ranks)" in text
    assert "[c-torch-dtensor-float32-cpu-loss-vocab2]" in text
    observed = to_markdown(blocks)
    assert "| e · batch2 | float32 |" in observed  # the known divergence's observed table


def test_rerun_id_of_a_sharded_check_is_its_pytest_id():
    case = next(c for c in load_case_file(SHARDED_CASES) if c.layouts)
    for layout in (*case.layouts, Layout("sequence", 4)):
        check = Check(case, "torch-dtensor", "float32", "cpu", "loss", layout=layout)
        assert reproduce.pytest_id(base_record(check) | {"id": check.id}) == check.param_id
    unsharded = Check(case, "torch", "float32", "cpu", "loss")
    assert reproduce.pytest_id(base_record(unsharded)) == unsharded.param_id


# --- every results file the suite writes renders ----------------------------------------------


RESULTS_FILES = [REPO / "results" / "conformance.json", REPO / "results" / "kernels" / "conformance.json",
                 REPO / "results" / "sharded" / "conformance.json"]


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_cli_renders_a_sharded_results_file(tmp_path, fmt, capsys):
    path = tmp_path / "conformance.json"
    path.write_text(json.dumps({"schema": 1, "environment": {"date": "today"}, "results": sharded_records()}))
    out = tmp_path / f"report.{fmt}"
    assert cli.main(["report", str(path), "--format", fmt, "-o", str(out)]) == 0
    text = out.read_text()
    assert "Layouts: framework x layout" in text and "Communication" in text
    assert "2P 1F 1K 1S" in text


def test_the_main_matrix_merged_with_sharded_results_renders(tmp_path, capsys):
    """The full matrix's variety of records (no layouts) beside sharded ones: one report, whose
    Layouts table holds the sharded frameworks only."""
    main, sharded_file = tmp_path / "main.json", tmp_path / "sharded.json"
    write_variety(main, seed=2, odd=True)
    sharded_file.write_text(json.dumps({"schema": 1, "environment": {"date": "today"},
                                        "results": sharded_records()}))
    for fmt in ("md", "html"):
        out = tmp_path / f"report.{fmt}"
        assert cli.main(["report", str(main), str(sharded_file), "--format", fmt, "-o", str(out)]) == 0
    records = json.loads(main.read_text())["results"] + sharded_records()
    layouts = table(build(records), "layouts")
    assert [plain(row[0]) for row in layouts.rows] == ["jax-sharded", "megatron-core", "torch-dtensor"]


@pytest.mark.parametrize("path", RESULTS_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_results_file_of_the_suite_renders(path, tmp_path):
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} not written here (its nox session has not run)")
    for fmt in ("md", "html"):
        assert cli.main(["report", str(path), "--format", fmt, "-o", str(tmp_path / f"report.{fmt}")]) == 0
    document = json.loads(path.read_text())
    has_layouts = any(r.get("layout") for r in document["results"])
    assert ("Layouts: framework x layout" in (tmp_path / "report.md").read_text()) == has_layouts


def test_a_quantity_compared_with_zero_adds_no_ulp_error_to_a_cell():
    """rank_agreement and same_as_one_rank are compared with 0: their ULPs (of 0) say nothing of accuracy."""
    from conformance.report import model

    loss = {"kind": "reference", "outcome": "passed", "quantity": "loss", "max_ulp_err": 3.0}
    spread = {"kind": "reference", "outcome": "passed", "quantity": "same_as_one_rank", "max_ulp_err": 8.1e31}
    assert model.max_ulp(model.compared_ulps([loss, spread])) == 3.0
    assert model.AGAINST_ZERO == {"rank_agreement", "same_as_one_rank"}
