"""Model formats come from the `driftloop.adapters` entry-point group: driftloop's own, and
any installed package's."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from driftloop.models.base import (
    BUILTIN_ADAPTERS,
    UnsupportedModelError,
    installed_adapters,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_builtin_list_is_what_pyproject_declares() -> None:
    """The fallback for an install whose metadata predates the entry points may not drift
    from the entry points themselves."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["driftloop.adapters"] == BUILTIN_ADAPTERS


def test_an_installed_package_adds_a_format(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A real distribution on sys.path (a .dist-info folder with entry_points.txt, what pip
    writes) contributes an adapter, and the `adapters` setting narrows the list."""
    (tmp_path / "onnxish.py").write_text(
        "class OnnxAdapter:\n    framework = 'onnxish'\n"
        "    def handles(self, model): return False\n"
        "    def save(self, model, directory): raise NotImplementedError\n"
        "    def load(self, directory): raise NotImplementedError\n")
    info = tmp_path / "onnxish-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxish\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[driftloop.adapters]\nonnxish = onnxish:OnnxAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "onnxish", raising=False)
    frameworks = [a.framework for a in installed_adapters()]
    assert "onnxish" in frameworks and "sklearn" in frameworks
    assert [a.framework for a in installed_adapters(["onnxish", "sklearn"])] == ["onnxish",
                                                                                 "sklearn"]


def test_an_unknown_adapter_name_lists_the_installed_ones() -> None:
    with pytest.raises(UnsupportedModelError, match=r"no adapter named 'onnx'.*sklearn"):
        installed_adapters(["onnx"])
