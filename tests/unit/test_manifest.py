"""The known-divergence manifest: what an entry covers, version ranges read against the package
they name, and refusals of a malformed manifest or tolerance table."""
import textwrap

import pytest

from conformance.core import manifest, tolerance

VERSIONS = {"jax": "0.10.2", "jaxlib": "0.10.2", "optax": "0.2.8"}


def load(tmp_path, text):
    path = tmp_path / "divergences.yaml"
    path.write_text(textwrap.dedent(text))
    return manifest.load(path)


def entry(tmp_path, versions):
    return load(tmp_path, f"""
        schema: 1
        entries:
          - id: optax-thing
            match: {{framework: jax, op: sparse_*, quantity: loss}}
            versions: {versions}
            action: xfail
            expect: inaccurate
            reason: why
    """)


FIELDS = {"case": "c", "op": "sparse_softmax_cross_entropy", "quantity": "loss", "framework": "jax",
          "dtype": "float32", "device": "cpu", "kind": "reference"}


@pytest.mark.parametrize("versions, covers", [
    ('"optax>=0.2.0"', True),
    ('"optax>=0.3"', False),  # jax 0.10 must not satisfy an optax range
    ('"jax>=0.10"', True),
    ('["jax>=0.10", "optax<0.2"]', False),
    ('"tensorflow>=2.16"', False),  # a package this framework does not record
])
def test_a_version_range_is_read_against_the_package_it_names(tmp_path, versions, covers):
    entries = entry(tmp_path, versions)
    assert (manifest.find_fields(entries, FIELDS, VERSIONS) is not None) == covers


def test_the_match_fields_are_patterns(tmp_path):
    entries = entry(tmp_path, '"optax>=0.2"')
    assert manifest.find_fields(entries, {**FIELDS, "quantity": "grad_logits"}, VERSIONS) is None
    assert manifest.find_fields(entries, {**FIELDS, "op": "softmax_cross_entropy"}, VERSIONS) is None
    assert manifest.find_fields(entries, {**FIELDS, "framework": "keras-jax"}, VERSIONS) is None


@pytest.mark.parametrize("text, message", [
    ("schema: 1\nentrys: []\n", "a mapping with `schema: 1` and a list `entries`"),
    ("schema: 1\nentries:\n  - {id: a, match: {framework: jax}, action: xfail, expect: nan, reason: r, "
     "versions: '>=0.2'}\n", "key 'versions': '>=0.2' must name a package"),
    ("schema: 1\nentries:\n  - {id: a, match: {framwork: jax}, action: xfail, expect: nan, reason: r}\n",
     "key 'match'"),
    ("schema: 1\nentries:\n  - {id: a, match: {framework: jax}, action: xfail, reason: r}\n", "key 'expect': missing"),
    ("schema: 1\nentries:\n  - {id: a, match: {framework: jax}, action: xfail, expect: wrong, reason: r}\n",
     "key 'expect': wrong"),
    ("schema: 1\nentries:\n  - {id: a, match: {framework: jax}, action: ignore, reason: r}\n", "key 'action'"),
    ("schema: 1\nentries:\n  - {id: a, match: {framework: jax}, action: xfail, expect: nan}\n",
     "key 'reason': missing"),
])
def test_a_malformed_manifest_is_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(manifest.ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(tmp_path, text)


def test_the_shipped_manifest_names_a_package_in_every_range():
    for each in manifest.load():
        assert not each.versions or each.versions[0].isalpha(), each.id


def _table(overrides):
    row = {"ulp": 4, "cond": 4, "abs": 0.0}
    return {"dtypes": {d: dict(row) for d in tolerance.PRECISION}, "pinned": {"ulp": 4}, "overrides": overrides}


def test_a_tolerance_override_applies_to_what_it_matches_only():
    loaded = _table([{"match": {"framework": "torch", "dtype": "float16"}, "ulp": 8, "reason": "r"}])
    tolerance.check_table(loaded, "t.yaml")
    assert tolerance.for_check("float16", "torch", "x", "loss", loaded).ulp == 8
    assert tolerance.for_check("float16", "torch", "x", "loss", loaded).reason == "r"
    assert tolerance.for_check("float32", "torch", "x", "loss", loaded).ulp == 4
    assert tolerance.for_check("float16", "jax", "x", "loss", loaded).ulp == 4


@pytest.mark.parametrize("overrides, message", [
    ([{"match": {"framework": "torch"}, "ulp": 8}], "an override says why"),
    ([{"match": {"frameworks": "torch"}, "ulp": 8, "reason": "r"}], "key 'overrides[0].match'"),
    ([{"match": {"framework": "torch"}, "ulps": 8, "reason": "r"}], "key 'overrides[0]'"),
])
def test_a_malformed_tolerance_table_is_refused(overrides, message):
    with pytest.raises(tolerance.ToleranceTableError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tolerance.check_table(_table(overrides), "t.yaml")


def test_the_shipped_tolerance_table_is_valid():
    tolerance.check_table(tolerance.table(), "shipped")


def test_the_runner_applies_a_matching_tolerance_override(monkeypatch):
    import numpy as np

    from conformance import adapters
    from conformance.adapters.numpy_adapter import NumpyAdapter
    from conformance.cases import Case
    from conformance.core.checks import Check
    from conformance.core.runner import Runner

    class OffByOnePerMille(NumpyAdapter):
        def loss(self, *args):
            result = super().loss(*args)
            result.values = result.values * 1.001
            return result

    case = Case(name="small", op="sparse_softmax_cross_entropy", path="<test>",
                inputs={"logits": np.array([[1.0, 2.0, 0.5]]), "labels": np.array([1])})
    monkeypatch.setattr(adapters, "load", lambda name: OffByOnePerMille())
    check = Check(case, "numpy", "float64", "cpu", "loss")
    assert Runner(manifest=[]).run(check)["outcome"] == "failed"
    loose = _table([{"match": {"framework": "numpy", "op": "sparse_*", "quantity": "loss"}, "abs": 1.0,
                     "reason": "a test of the override path"}])
    monkeypatch.setattr(tolerance, "table", lambda: loose)
    record = Runner(manifest=[]).run(check)
    assert record["outcome"] == "passed" and record["tolerance"]["abs"] == 1.0


def test_the_divergence_document_is_generated_from_the_manifest():
    from pathlib import Path

    from conformance.report import manifest_doc

    path = Path(__file__).resolve().parents[2] / "docs" / "divergences.md"
    assert path.read_text() == manifest_doc.render(manifest.load()), (
        "docs/divergences.md is stale: xent-conformance divergences --core -o docs/divergences.md")


def test_the_divergence_document_tables_where_an_entry_matched(tmp_path):
    from conformance.report import manifest_doc

    entries = entry(tmp_path, '"optax>=0.2.0"')
    records = [{"manifest": "optax-thing", "framework": "jax", "op": "sparse_softmax_cross_entropy",
                "dtype": "float32", "modes": {"jit": {}, "eager": {}}}]
    text = manifest_doc.render(entries, records)
    assert "| jax | sparse_softmax_cross_entropy | float32 | eager, jit | 1 |" in text
    assert "matched no check" in manifest_doc.render(entries, [])


PLUGIN_ENTRY = """
    schema: 1
    entries:
      - id: {id}
        match: {{framework: my-kernel, quantity: loss}}
        action: skip
        reason: why
"""


def test_a_plugins_manifest_joins_the_suites(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent(PLUGIN_ENTRY.format(id="my-kernel-thing")))
    core = manifest.load()
    joined = manifest.load_all([path])
    assert [e.id for e in joined] == [e.id for e in core] + ["my-kernel-thing"]


def test_an_id_used_in_two_manifests_is_refused_naming_both(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent(PLUGIN_ENTRY.format(id=manifest.load()[0].id)))
    with pytest.raises(manifest.ManifestError, match=rf"{path}: entry .* id already used in .*divergences.yaml"):
        manifest.load_all([path])


def test_a_missing_manifest_is_one_line_naming_it():
    with pytest.raises(manifest.ManifestError, match=r"^nope.yaml: cannot read: .* \(from --manifest\)$"):
        manifest.load_all(["nope.yaml"])


def test_a_plugin_registers_its_manifest_by_entry_point(tmp_path, monkeypatch):
    from importlib import metadata

    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent(PLUGIN_ENTRY.format(id="my-kernel-thing")))
    (tmp_path / "my_kernel_manifest.py").write_text(f"MANIFEST = {str(path)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    point = metadata.EntryPoint("my-kernel", "my_kernel_manifest:MANIFEST", manifest.ENTRY_POINT_GROUP)
    monkeypatch.setattr(manifest.metadata, "entry_points", lambda group: [point] if group == point.group else [])
    assert "my-kernel-thing" in [e.id for e in manifest.load_all()]
    assert "my-kernel-thing" not in [e.id for e in manifest.load_all(plugins=False)]


def test_the_kernels_entries_ship_with_their_plugin():
    from pathlib import Path

    plugin = Path(__file__).resolve().parents[2] / "plugins" / "xent-kernels" / "xent_kernels" / "divergences.yaml"
    theirs = manifest.load(plugin)
    kernels = ("liger", "cce", "liger-vp*", "liger-vp-megatron")  # the plug-in's framework ids, as entries match them
    assert theirs and all(e.match["framework"] in kernels for e in theirs)
    assert not [e.id for e in manifest.load() if e.match.get("framework") in (*kernels, "example-kernel")]


@pytest.mark.parametrize("command", [
    ["-m", "pytest", "conformance/pytest/suite", "-q", "-p", "no:cacheprovider", "--manifest", "nope.yaml"],
    ["-m", "conformance", "run", "--manifest", "nope.yaml", "--framework", "numpy"],
])
def test_a_manifest_option_that_names_no_file_is_refused_in_one_line(command):
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode != 0 and "nope.yaml: cannot read" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
