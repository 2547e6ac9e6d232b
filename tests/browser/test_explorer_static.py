"""DatasetExplorer in headless Chromium against the static harness: 10,000 fake items, a fake kernel.

The page gets metadata for 10,000 items as binary arrays; the test plays the kernel: it answers each
``page`` request the view sends with the maps of exactly those items (uint8 buffers, as
``DatasetExplorer.page`` sends them). Oracles: the DOM holds a bounded number of tiles at any scroll
position; every page request names only items on screen (plus the one-row overscan); filters and the
scatter's rectangle brush leave exactly the items the same rule selects in numpy; hovering a point shows its
item and thumbnail; a tile's pixels are the colour map's value of that item's map (viridis LUT, exact: the
map is drawn opaque without a photo).
Both themes pass the WCAG contrast check of test_themes_static.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from harness import WidgetPage, array_dict
from test_themes_static import check_legible, set_theme

pytestmark = pytest.mark.browser

N = 10_000
M = 8  # map side
CLASSES = ["circle", "square", "triangle", "cross"]
TILE_W, ROW_H = 104, 140  # js/src/views/explorer.ts
VIRIDIS_TOP, VIRIDIS_BOTTOM = (253, 231, 37), (68, 1, 84)


def fake_meta(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 4, n).astype(np.int32)
    pred = np.where(rng.random(n) < 0.8, label, rng.integers(0, 4, n)).astype(np.int32)
    conf = rng.uniform(0.3, 1.0, n).astype(np.float32)
    return {"index": np.arange(n, dtype=np.int32), "label": label, "pred": pred, "conf": conf,
            "correct": (label == pred).astype(np.uint8), "loss": (-np.log(conf)).astype(np.float32),
            "stat": rng.random(n).astype(np.float32)}


def meta_state(meta: dict[str, np.ndarray]) -> dict[str, Any]:
    n = len(meta["index"])
    return {"n": n, "total": n, "method": "gradcam", **{k: array_dict(v) for k, v in meta.items()}}


def split_of(index: int) -> int:
    """Item ``index``'s map is 1 on columns < split and 0 after: a different split per item."""
    return 1 + index % (M - 1)


def item_map(index: int) -> np.ndarray:
    m = np.zeros((M, M), np.uint8)
    m[:, :split_of(index)] = 255
    return m


def base_state(meta: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"meta": meta_state(meta), "classes": CLASSES, "methods": ["gradcam"], "method": "gradcam",
            "has_images": False, "has_model": True, "spray": {}, "selection": [], "drill": {}, "message": "",
            "preview": {}, "title": "fake 10,000 items", "progress": 1.0, "status": "idle",
            "colormap": "viridis", "opacity": 0.6, "absolute": False, "clip_percentile": 100.0, "alpha": "auto"}


class FakeKernel:
    """Answers the view's page requests with item_map; records what was asked."""

    def __init__(self, wpage: WidgetPage) -> None:
        self.wpage, self.seen, self.pages = wpage, 0, []

    def serve(self, rounds: int = 6) -> None:
        for _ in range(rounds):
            sent = self.wpage.sent()
            new = sent[self.seen:]
            self.seen = len(sent)
            if not new:
                self.wpage.page.wait_for_timeout(30)
                if len(self.wpage.sent()) == self.seen:
                    return
                continue
            for msg in new:
                if msg["type"] != "page":
                    continue
                idx = msg["indices"]
                self.pages.append(idx)
                codes = np.stack([item_map(i) for i in idx])
                header = {"type": "page", "id": msg["id"], "indices": idx, "method": msg["method"],
                          "maps": {"dtype": "uint8", "shape": list(codes.shape)}, "ranges": [0.0, 1.0] * len(idx)}
                self.wpage.emit_custom(header, buffers=[codes.tobytes()])
                self.wpage.emit_custom({"type": "done", "id": msg["id"], "status": "done"})


def grid_geometry(wpage: WidgetPage) -> dict[str, float]:
    return wpage.page.evaluate("""() => { const g = document.querySelector('.xw-grid');
      return {w: g.clientWidth, h: g.clientHeight, top: g.scrollTop}; }""")


def tiles(wpage: WidgetPage) -> list[dict[str, Any]]:
    return wpage.page.evaluate("""() => Array.from(document.querySelectorAll('.xw-etile'))
      .filter((t) => !t.hidden).map((t) => ({index: Number(t.dataset.index), pos: Number(t.dataset.pos),
        loaded: t.querySelector('canvas').dataset.loaded === 'true',
        pred: t.querySelector('.xw-etile-pred').textContent}))""")


def scroll_to(wpage: WidgetPage, top: float) -> None:
    wpage.page.evaluate("(t) => { const g = document.querySelector('.xw-grid'); g.scrollTop = t; }", top)
    wpage.page.wait_for_timeout(60)  # the scroll event and one animation frame


def visible_positions(geo: dict[str, float], count: int) -> tuple[int, int]:
    cols = max(1, int(geo["w"] // TILE_W))
    r0 = max(0, int(geo["top"] // ROW_H) - 1)
    r1 = int(-(-(geo["top"] + geo["h"]) // ROW_H)) + 1
    return r0 * cols, min(count, r1 * cols)


def mount(wpage: WidgetPage, meta: dict[str, np.ndarray]) -> FakeKernel:
    wpage.mount("explorer", base_state(meta))
    kernel = FakeKernel(wpage)
    kernel.serve()
    return kernel


def test_grid_is_virtual_and_pages_follow_the_scroll(wpage: WidgetPage) -> None:
    meta = fake_meta()
    kernel = mount(wpage, meta)
    geo = grid_geometry(wpage)
    cols = int(geo["w"] // TILE_W)
    bound = (int(geo["h"] // ROW_H) + 4) * cols  # visible rows + a partial row + one overscan row each side
    assert wpage.page.inner_text(".xw-count") == "10,000 of 10,000 items"
    for top in (0, 140 * 700, 140 * 1250, 1e9):
        before = len(kernel.pages)
        scroll_to(wpage, top)
        kernel.serve()
        geo = grid_geometry(wpage)
        shown = tiles(wpage)
        assert 0 < len(shown) <= bound, (top, len(shown), bound)
        first, last = visible_positions(geo, N)
        assert {t["pos"] for t in shown} == set(range(first, last))
        for page in kernel.pages[before:]:  # only items on screen were asked for
            assert all(first <= i < last for i in page), (top, first, last, page[:5])
        assert all(t["loaded"] for t in shown)
    asked = sum(len(p) for p in kernel.pages)
    assert asked < 4 * bound, f"{asked} items requested for 4 screens"
    # a tile's pixels are its own map's: columns < split at viridis(1), the others at viridis(0)
    shown = tiles(wpage)
    for nth in (0, len(shown) // 2, len(shown) - 1):
        t = shown[nth]
        sel = f'.xw-etile[data-index="{t["index"]}"] canvas'
        s = split_of(t["index"])
        assert wpage.pixel(sel, s - 1, 3)[:3] == VIRIDIS_TOP
        assert wpage.pixel(sel, s, 3)[:3] == VIRIDIS_BOTTOM
    wpage.screenshot("explorer-grid.png")


def test_filters_sort_and_counts(wpage: WidgetPage) -> None:
    meta = fake_meta()
    mount(wpage, meta)
    wpage.page.select_option(".xw-f-correct", "wrong")
    wrong = np.flatnonzero(meta["correct"] == 0)
    assert wpage.page.inner_text(".xw-count") == f"{len(wrong):,} of 10,000 items"
    shown = tiles(wpage)
    assert shown and all(t["index"] in set(wrong.tolist()) for t in shown)
    wpage.page.select_option(".xw-f-pred", "1")
    wpage.page.fill(".xw-f-confmin", "0.5")
    wpage.page.dispatch_event(".xw-f-confmin", "change")
    keep = np.flatnonzero((meta["correct"] == 0) & (meta["pred"] == 1) & (meta["conf"] >= 0.5))
    assert wpage.page.inner_text(".xw-count") == f"{len(keep):,} of 10,000 items"
    # the counts next to the options follow the other filters
    option = wpage.page.inner_text('.xw-f-correct option[value="wrong"]')
    assert option == f"wrong ({len(keep)})"
    wpage.page.select_option(".xw-sort", "conf_desc")
    order = keep[np.lexsort((keep, -meta["conf"][keep]))]
    shown = sorted(tiles(wpage), key=lambda t: t["pos"])
    assert [t["index"] for t in shown] == order[: len(shown)].tolist()
    assert all("→ square" in t["pred"] for t in shown)


def spray_state(meta: dict[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """SpRAy of class 1: two clusters, far apart in the embedding (cluster 1 = every 5th item)."""
    idx = np.flatnonzero(meta["pred"] == 1).astype(np.int32)
    labels = (np.arange(len(idx)) % 5 == 0).astype(np.int16)
    rng = np.random.default_rng(1)
    emb = np.where(labels[:, None] == 1, [8.0, 8.0], [0.0, 0.0]) + rng.normal(0, 0.5, (len(idx), 2))
    means = np.stack([item_map(0), item_map(5)])
    state = {"cls": 1, "method": "gradcam", "state": "done", "error": "", "n_clusters": 2, "eigengap": 2,
             "eigenvalues": array_dict(np.array([0, 0.01, 0.4, 0.45, 0.5], np.float32)),
             "indices": array_dict(idx), "labels": array_dict(labels), "embedding": array_dict(emb.astype(np.float32)),
             "means": array_dict(means), "mean_ranges": array_dict(np.array([[0, 1], [0, 1]], np.float32)),
             "sizes": [int((labels == 0).sum()), int((labels == 1).sum())]}
    return state, idx, labels


def test_spray_brush_filters_the_grid_and_sets_the_selection(wpage: WidgetPage) -> None:
    meta = fake_meta()
    kernel = mount(wpage, meta)
    state, idx, labels = spray_state(meta)
    wpage.page.select_option(".xw-spray-class", "1")
    wpage.page.click(".xw-spray-run")
    asked = [m for m in wpage.sent() if m["type"] == "spray"]
    assert asked and asked[-1]["cls"] == 1
    wpage.kernel_set("spray", state)
    assert wpage.page.get_attribute(".xw-eigen", "data-gap") == "2"
    assert wpage.page.locator(".xw-mean").count() == 2
    # hovering a point shows its item, then its thumbnail once the kernel sent its pixels
    wpage.page.locator(".xw-scatter").scroll_into_view_if_needed()
    box = wpage.page.locator(".xw-scatter").bounding_box()
    for dx in range(0, 60, 3):
        wpage.page.mouse.move(box["x"] + box["width"] * 0.84 - dx, box["y"] + box["height"] * 0.16 + dx / 2)
        if wpage.page.is_visible(".xw-tooltip"):
            break
    assert wpage.page.inner_text(".xw-tooltip").startswith("#")
    hovered = int(wpage.page.inner_text(".xw-tooltip")[1:].split()[0])
    assert hovered in set(idx[labels == 1].tolist())
    kernel.serve()
    wpage.page.mouse.move(box["x"] + box["width"] * 0.84 - dx, box["y"] + box["height"] * 0.16 + dx / 2 + 0.5)
    assert wpage.page.locator(".xw-tooltip canvas.xw-hover-thumb").count() == 1
    # brush the upper-right cluster (cluster 1 sits at large x and y: top right of the canvas)
    wpage.page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + 2)
    wpage.page.mouse.down()
    wpage.page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] * 0.45, steps=5)
    wpage.page.mouse.up()
    selected = sorted(wpage.state("selection"))
    assert selected == sorted(idx[labels == 1].tolist())
    assert "selection" in wpage.saved()
    assert wpage.page.inner_text(".xw-count") == f"{len(selected):,} of 10,000 items"
    kernel.serve()
    assert all(t["index"] in set(selected) for t in tiles(wpage))
    wpage.page.click(".xw-clear-brush")
    # the cluster filter: cluster 0 of class 1
    wpage.page.click('.xw-mean[data-cluster="0"]')
    assert wpage.page.inner_text(".xw-count") == f"{int((labels == 0).sum()):,} of 10,000 items"
    wpage.screenshot("explorer-spray.png")


def test_drill_and_bad_input_messages(wpage: WidgetPage) -> None:
    meta = fake_meta(200)
    kernel = mount(wpage, meta)
    wpage.page.click('.xw-etile[data-index="3"]')
    drill = [m for m in wpage.sent() if m["type"] == "drill"]
    assert drill[-1]["index"] == 3
    wpage.page.focus('.xw-etile[data-index="4"]')
    wpage.page.keyboard.press("Enter")
    assert [m for m in wpage.sent() if m["type"] == "drill"][-1]["index"] == 4
    # the kernel cannot resolve it (the store changed): the message shows, nothing freezes
    wpage.emit_custom({"type": "done", "id": drill[-1]["id"], "status": "error",
                       "error": "item 3 is not in these explanations (the store changed)"})
    assert "store changed" in wpage.page.inner_text(".xw-drill-error")
    wpage.kernel_set("spray", {"cls": 2, "method": "gradcam", "state": "error",
                               "error": "SpRAy needs at least 3 items; 1 are predicted as class 2"})
    assert "at least 3 items" in wpage.page.inner_text(".xw-explorer-message")
    kernel.serve()
    wpage.kernel_set("message", "this store has no maps for 'saliency'; its methods: gradcam")
    assert "no maps" in wpage.page.inner_text(".xw-explorer-message")


def test_empty_store_shows_a_message(wpage: WidgetPage) -> None:
    state = base_state(fake_meta(0))
    state["message"] = "no items: the dataset or the store is empty"
    wpage.mount("explorer", state)
    assert wpage.page.inner_text(".xw-count") == "0 of 0 items"
    assert "no items" in wpage.page.inner_text(".xw-explorer-message")
    assert wpage.unmount() == 0


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_explorer_themes(wpage: WidgetPage, theme: str) -> None:
    meta = fake_meta(300)
    set_theme(wpage, theme)
    mount(wpage, meta)
    state, _, _ = spray_state(meta)
    wpage.kernel_set("spray", state)
    wpage.screenshot(f"explorer-{theme}.png")
    check_legible(wpage, ".xw-explorer", theme)
