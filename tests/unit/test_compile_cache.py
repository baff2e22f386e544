"""The compilation caches' folder: where it is, that an unwritable one costs a warning and no
caching (never a failed check), and that a user's own framework settings are kept."""
import os

import pytest

from conformance import compile_cache


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(compile_cache, "_checked", {})
    for variable in (*compile_cache._TORCH_VARIABLES, *compile_cache._TORCH_SWITCHES):
        monkeypatch.delenv(variable, raising=False)


def test_the_folder_is_made_and_frameworks_pointed_at_it(tmp_path, monkeypatch):
    monkeypatch.setenv(compile_cache.VARIABLE, str(tmp_path / "cache"))
    assert compile_cache.configure_environment() == tmp_path / "cache"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "cache" / "triton")
    assert os.environ["TORCHINDUCTOR_FX_GRAPH_CACHE"] == "1"


def test_a_users_own_setting_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(compile_cache.VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/mine")
    compile_cache.configure_environment()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/mine"


def test_an_unwritable_folder_warns_and_caches_nothing(tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(compile_cache.VARIABLE, str(blocked / "cache"))
    assert compile_cache.configure_environment() is None
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    assert "is not writable" in capsys.readouterr().err
    assert compile_cache.describe().startswith("compilation caches: none")


@pytest.mark.parametrize("off", ["off", "0", ""])
def test_caching_can_be_turned_off(monkeypatch, off):
    monkeypatch.setenv(compile_cache.VARIABLE, off)
    assert compile_cache.folder() is None


def test_jax_is_pointed_at_the_folder(tmp_path, monkeypatch):
    jax = pytest.importorskip("jax")
    monkeypatch.setenv(compile_cache.VARIABLE, str(tmp_path / "cache"))
    before = jax.config.jax_compilation_cache_dir
    try:
        compile_cache.configure_jax(jax)
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache" / "jax")
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
