"""#17 item 1: the quickstart's cells run back to back while the dashboard computes in its worker thread.

The dashboard's Grad-CAM and a plain ``xw.attribute(clf, x, "gradcam")`` in the main thread race for the
model; before the per-model lock, the default-layer pass of one saw the other's hooks (wrong layers such as
``_blocks.6._project_conv.static_padding``, "layer called 2 times") and the wrong choice was cached. Each
round starts from an empty default-layer cache (a fresh kernel), so every round races the discovery pass.
"""

from __future__ import annotations

import xaiwidgets as xw
from xaiwidgets.demo import load_image
from xaiwidgets.methods.cam import base as cam_base


def test_quickstart_cells_back_to_back_explain_the_same_layer(effnet):
    cat = load_image("chelsea")
    x = effnet.preprocess(cat)
    seen = []
    for _ in range(10):
        cam_base._DEFAULT_LAYER.clear()
        dash = xw.explain(effnet, cat, methods=["saliency", "input_x_gradient", "gradcam"])  # cell 3
        a = xw.attribute(effnet, x, method="gradcam", progress=False)  # the next cell, while it computes
        assert dash.wait(300)
        panel = next(p for p in dash.panels if p["method"] == "gradcam")
        seen.append((a.extras["layer"], panel["state"], panel["layer"]))
        dash.close()
    assert seen == [("input of _avg_pooling", "done", "input of _avg_pooling")] * 10
    assert "after the activation" in a.extras["layer_reason"]
