"""Docs that are generated from the code stay current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_method_table_matches_the_registry() -> None:
    spec = importlib.util.spec_from_file_location("methods_table", ROOT / "scripts" / "methods_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (ROOT / "docs" / "methods.md").read_text()
    assert current == module.table(), "docs/methods.md is stale: run python scripts/methods_table.py"
