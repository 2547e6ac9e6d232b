"""docs/adding-a-method.md is true to the code: its example, saved as a module of its own and imported (step 4
for a method outside the package), is registered, runs by name on images and texts, is offered by the
dashboard's method picker and has a row in the generated methods table. The registry is left as it was."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.methods import registry

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "adding-a-method.md"


def documented_example() -> str:
    """The first python block of the document (the method of step 2)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/adding-a-method.md has no python example"
    return blocks[0]


@pytest.fixture
def added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """The documented method, added in a temporary module; unregistered and unimported afterwards."""
    (tmp_path / "doc_example_method.py").write_text(documented_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    before = dict(registry._REGISTRY)
    try:
        module = importlib.import_module("doc_example_method")
        new = [cls for name, cls in registry._REGISTRY.items() if name not in before]
        assert len(new) == 1 and new[0].__module__ == module.__name__, "the example registers one method"
        yield new[0]
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(before)
        sys.modules.pop("doc_example_method", None)


def test_the_documented_method_appears_everywhere(added: type, tiny_cnn: torch.nn.Module) -> None:
    name = added.name
    row = next(r for r in xw.methods.available() if r["name"] == name)
    assert row["family"] == added.family and row["modalities"] == ("image", "tabular", "text")  # from its hooks
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a = xw.attribute(tiny_cnn, x, name, target=1, scale=0.5)
    grad = xw.attribute(tiny_cnn, x, "gradient", target=1).values
    torch.testing.assert_close(a.values, 0.5 * grad)  # the template's definition, same autograd call
    assert a.method == name and a.params["scale"] == 0.5

    # the dashboard's picker: the method info the widget sends to the browser
    view = xw.explain(tiny_cnn, x, methods=[name], labels=["a", "b", "c", "d"], wait=True)
    try:
        info = next(m for m in view.available_methods if m["name"] == name)
        assert info["description"].startswith("The gradient of the target score") and not info["unavailable"]
        assert info["tunable"]["scale"]["max"] == 2.0
        assert [p["state"] for p in view.panels] == ["done"]
    finally:
        view.close()

    # the generated methods table (docs/methods.md)
    spec = importlib.util.spec_from_file_location("methods_table", ROOT / "scripts" / "methods_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    assert f"| `{name}` | {added.family} | image, tabular, text | {added.reference} |" in table.table()


def test_the_registry_is_clean_again() -> None:
    """Runs after the test above (file order): the example left nothing behind."""
    assert "doc_example_method" not in sys.modules
    assert all(cls.__module__.startswith("xaiwidgets.") for cls in registry._REGISTRY.values())
