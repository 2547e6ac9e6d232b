"""The wheel carries the built front end and the demo assets."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_js_bundle_and_demo_assets(tmp_path: Path) -> None:
    # --no-isolation: hatchling and hatch-jupyter-builder come from the test extra; the npm build hook
    # is skipped because scripts/setup.sh already built xaiwidgets/static/ (the same hook runs npm
    # when it is missing, as in a plain `pip install .`)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = tmp_path.glob("xaiwidgets-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    views = sorted(f.stem for f in (ROOT / "js" / "src" / "views").glob("*.ts") if not f.stem.endswith(".test"))
    bundles = tuple(f"xaiwidgets/static/{view}.js" for view in views)
    assert "dashboard" in views
    for required in (*bundles, "xaiwidgets/static/views.json", "xaiwidgets/__init__.py", "xaiwidgets/demo/imagenet.py",
                     "xaiwidgets/demo/weights/shapes_cnn.pt"):
        assert required in names, f"{required} missing from the wheel"
    assert not any(n.startswith(("js/", "tests/")) for n in names)
