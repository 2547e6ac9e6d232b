"""DatasetExplorer in headless Chromium (Debian's chromium via Playwright, the static browser harness).

Run by hand: ``PYTHONPATH=. python benchmarks/explorer.py [--n-scroll 50000] [--n-store 10000]``. Prints:

1. scrolling 50,000 items: the grid is scrolled by 60, then 300 px per animation frame for 400 frames while a fake
   kernel in the page answers every page request after 5 ms with 64x64 maps and thumbnails; the median and
   95th percentile of the ``requestAnimationFrame`` intervals (target: median <= 16 ms), and the tiles in the
   DOM;
2. first tiles visible: a finished store of 10,000 items (tiny CNN, 32x32 inputs, ``map_size=32``): the kernel
   side (``xw.explore(xw.open_explanations(...))``: metadata built) and the browser side (mounted until the
   first tile's pixels are drawn, the page request answered by the real kernel's ``page``), target <= 1 s;
3. brushing over 10,000 points: the time of each ``mousemove`` handler while dragging a rectangle over the
   SpRAy scatter (hit test and redraw), median and max (target <= 16 ms per update);
4. bytes on the wire per visible page (the real kernel's ``page`` for one screen of tiles).
There is no peer widget to compare with (Captum Insights no longer loads in JupyterLab 4); the numbers are
compared with the targets of issue 20.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

import xaiwidgets as xw  # noqa: E402

FAKE_KERNEL = r"""([side, delay]) => {
  const model = window.xw.model(0);
  model.send = (msg) => {
    if (msg.type !== 'page') return;
    setTimeout(() => {
      const n = msg.indices.length, m = side;
      const maps = new Uint8Array(n * m * m), imgs = new Uint8Array(n * m * m * 3);
      for (let k = 0; k < n; k++) for (let i = 0; i < m * m; i++) {
        maps[k * m * m + i] = (i + msg.indices[k]) & 255; imgs[(k * m * m + i) * 3] = i & 255;
      }
      const header = {type: 'page', id: msg.id, indices: msg.indices, method: msg.method,
        maps: {dtype: 'uint8', shape: [n, m, m]}, images: {dtype: 'uint8', shape: [n, m, m, 3]},
        ranges: Array.from({length: 2 * n}, (_, i) => (i % 2 ? 1 : -1))};
      model._emit('msg:custom', header, [new DataView(maps.buffer), new DataView(imgs.buffer)]);
      model._emit('msg:custom', {type: 'done', id: msg.id, status: 'done'});
    }, delay);
  };
}"""

SCROLL = r"""async ([frames, step]) => {
  const grid = document.querySelector('.xw-grid');
  const times = [];
  let last = performance.now();
  for (let f = 0; f < frames; f++) {
    await new Promise((r) => requestAnimationFrame(r));
    const now = performance.now();
    times.push(now - last);
    last = now;
    grid.scrollTop += step;
  }
  return {times, tiles: document.querySelectorAll('.xw-etile:not([hidden])').length,
          all: document.querySelectorAll('.xw-etile').length, top: grid.scrollTop};
}"""

BRUSH = r"""() => {
  const c = document.querySelector('.xw-scatter');
  c.scrollIntoView();
  const r = c.getBoundingClientRect();
  const ev = (type, x, y) => new MouseEvent(type, {clientX: r.left + x, clientY: r.top + y, bubbles: true});
  c.dispatchEvent(ev('mousedown', 10, 10));
  const times = [];
  for (let i = 0; i < 60; i++) {
    const t0 = performance.now();
    c.dispatchEvent(ev('mousemove', 20 + i * 4, 20 + i * 4));
    times.push(performance.now() - t0);
  }
  const t0 = performance.now();
  window.dispatchEvent(ev('mouseup', 260, 260));
  return {times, up: performance.now() - t0};
}"""


def fake_meta_state(n: int) -> dict:
    from harness import array_dict

    rng = np.random.default_rng(0)
    label = rng.integers(0, 10, n).astype(np.int32)
    pred = np.where(rng.random(n) < 0.8, label, rng.integers(0, 10, n)).astype(np.int32)
    conf = rng.uniform(0.2, 1, n).astype(np.float32)
    meta = {"index": np.arange(n, dtype=np.int32), "label": label, "pred": pred, "conf": conf,
            "correct": (label == pred).astype(np.uint8), "loss": -np.log(conf), "stat": rng.random(n, np.float32)}
    return {"meta": {"n": n, "total": n, "method": "gradcam", **{k: array_dict(v) for k, v in meta.items()}},
            "classes": [f"class {c}" for c in range(10)], "methods": ["gradcam"], "method": "gradcam",
            "has_images": True, "has_model": True, "spray": {}, "selection": [], "drill": {}, "message": "",
            "preview": {}, "title": f"{n:,} fake items", "progress": 1.0, "status": "idle", "colormap": "auto",
            "opacity": 0.6, "absolute": False, "clip_percentile": None, "alpha": "auto"}


def spray_state(n: int) -> dict:
    from harness import array_dict

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, n).astype(np.int16)
    emb = (rng.normal(size=(n, 2)) + labels[:, None] * 3).astype(np.float32)
    return {"cls": 0, "method": "gradcam", "state": "done", "error": "", "n_clusters": 4, "eigengap": 4,
            "eigenvalues": array_dict(np.linspace(0, 1, 16, dtype=np.float32)),
            "indices": array_dict(np.arange(n, dtype=np.int32)), "labels": array_dict(labels),
            "embedding": array_dict(emb), "means": array_dict(np.zeros((4, 32, 32), np.uint8)),
            "mean_ranges": array_dict(np.tile(np.array([0, 1], np.float32), (4, 1))),
            "sizes": np.bincount(labels).tolist()}


def make_store(path: Path, n: int) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(8), nn.Flatten(),
                        nn.Linear(512, 10)).eval()
    x = torch.rand(n, 3, 32, 32)
    y = torch.randint(0, 10, (n,))
    xw.explain_dataset(net, x, ("gradcam",), labels=y, store=path, batch_size=256, map_size=32, progress=False)
    return net, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scroll", type=int, default=50_000)
    parser.add_argument("--n-store", type=int, default=10_000)
    args = parser.parse_args()
    from harness import CHROMIUM_ARGS, widget_pages
    from kernel_bridge import KernelBridge
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        with widget_pages(browser, viewport=(1200, 900)) as fresh:
            # 1. scrolling (the same rAF loop on an empty page first: the machine's own frame interval)
            wp = fresh()
            base = np.median(wp.page.evaluate(SCROLL.replace("document.querySelector('.xw-grid')", "document.body"),
                                              [200, 0])["times"][1:])
            wp = fresh()
            wp.mount("explorer", fake_meta_state(args.n_scroll))
            wp.page.evaluate(FAKE_KERNEL, [64, 5])
            wp.page.evaluate(SCROLL, [30, 0])  # warm up
            r = wp.page.evaluate(SCROLL, [400, 60])
            t = np.asarray(r["times"][1:])
            print(f"1. scrolling {args.n_scroll:,} items, 60 px per frame (3,600 px/s), 400 frames: median frame "
                  f"{np.median(t):.1f} ms, p95 {np.percentile(t, 95):.1f} ms")
            r = wp.page.evaluate(SCROLL, [400, 300])
            t = np.asarray(r["times"][1:])
            print(f"   the same, 300 px per frame (2 rows a frame), 400 frames: median frame "
                  f"{np.median(t):.1f} ms, p95 {np.percentile(t, 95):.1f} ms, max {t.max():.1f} ms (target median "
                  f"<= 16 ms); empty page {base:.1f} ms; tiles in the DOM {r['tiles']} shown / {r['all']} created; "
                  f"scrolled to {r['top']:.0f} px; load average {os.getloadavg()[0]:.1f}")

            # 2a. the view alone: mount 10,000 items until the first tile is drawn (a fake kernel in the page
            # answers the page request at once), timed inside the page
            wp = fresh()
            state = fake_meta_state(args.n_store)
            wp.page.evaluate("(s) => { window.__state = s; }", state)
            ms = wp.page.evaluate("""async ([side]) => {
              const t0 = performance.now();
              const i = await window.xw.mount('explorer', window.__state);
              const model = window.xw.model(i);
              return await new Promise((resolve) => {
                const poll = () => document.querySelector('.xw-etile canvas[data-loaded="true"]')
                  ? resolve(performance.now() - t0) : requestAnimationFrame(poll);
                (FAKE)([side, 0]);
                model.sent.filter((m) => m.type === 'page').forEach((m) => model.send(m));
                poll();
              });
            }""".replace("(FAKE)", "(" + FAKE_KERNEL.replace("window.xw.model(0)", "window.xw.model(i)") + ")"),
                               [32])
            print(f"2a. the view alone: {args.n_store:,} items mounted, first tiles drawn after {ms:.0f} ms "
                  "(metadata decoded, filtered, grid laid out, page answered at once by an in-page fake kernel)")

            # 3. brushing
            wp = fresh()
            wp.mount("explorer", {**fake_meta_state(10_000), "spray": spray_state(10_000)})
            b = wp.page.evaluate(BRUSH)
            bt = np.asarray(b["times"])
            print(f"3. brushing over 10,000 points: per mousemove median {np.median(bt):.2f} ms, max {bt.max():.2f} ms "
                  f"(target <= 16 ms); mouseup (selection, grid filter) {b['up']:.1f} ms")

            # 2 and 4: a real store and the real kernel
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                net, x = make_store(Path(tmp) / "s", args.n_store)
                print(f"   (store of {args.n_store:,} items made in {time.perf_counter() - t0:.1f} s)")
                t0 = time.perf_counter()
                view = xw.explore(xw.open_explanations(Path(tmp) / "s", data=x, model=net))
                kernel = time.perf_counter() - t0
                meta_bytes = sum(len(bytes(v["data"])) for v in view.meta.values() if isinstance(v, dict))
                wp = fresh()
                bridge = KernelBridge(wp, view, ["meta", "classes", "methods", "method", "has_images", "has_model",
                                                 "spray", "selection", "drill", "message", "preview", "title",
                                                 "progress", "status", "colormap", "opacity", "absolute",
                                                 "clip_percentile", "alpha"])
                t0 = time.perf_counter()
                bridge.mount("explorer")
                while not wp.page.evaluate("() => !!document.querySelector('.xw-etile canvas[data-loaded=\"true\"]')"):
                    bridge.pump(timeout=30)
                browser_side = time.perf_counter() - t0
                print(f"2. first tiles visible on a finished {args.n_store:,}-item store: "
                      f"kernel {kernel * 1000:.0f} ms "
                      f"(open + metadata, {meta_bytes / 1e6:.2f} MB of metadata), browser {browser_side * 1000:.0f} ms "
                      f"(mount, page request, pixels drawn; the harness's comm is a base64 bridge); total "
                      f"{(kernel + browser_side) * 1000:.0f} ms (target <= 1 s)")
                screen = wp.page.evaluate("() => document.querySelectorAll('.xw-etile:not([hidden])').length")
                header, buffers = view.page([int(i) for i in range(screen)])
                wire = len(json.dumps(header)) + sum(len(b) for b in buffers)
                print(f"4. one visible page ({screen} tiles, 32x32 maps and thumbnails): "
                      f"{wire / 1e3:.1f} kB on the wire "
                      f"({wire / screen / 1e3:.2f} kB per tile; maps {len(buffers[0]) / 1e3:.1f} kB, thumbnails "
                      f"{len(buffers[1]) / 1e3:.1f} kB, header {len(json.dumps(header)) / 1e3:.1f} kB)")
                view.close()
        browser.close()


if __name__ == "__main__":
    main()
