"""Force-plot geometry (the same rule as js/src/lib/force.ts) and its static PNG rendering."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .htmlfallback import NEGATIVE, POSITIVE


@dataclass
class Segment:
    index: int  # feature
    value: float  # contribution
    x0: float  # left end on the value axis
    x1: float  # right end


def force_layout(values: np.ndarray, base: float) -> tuple[float, list[Segment], list[Segment]]:
    """``(end, up, down)`` for one instance: ``end = base + sum(values)``; positive contributions stack
    leftwards from ``end`` (largest nearest), negative ones rightwards, so ``sum(up widths) - sum(down
    widths) = end - base``."""
    values = np.asarray(values, dtype=np.float64)
    end = float(base + values.sum())
    up, down = [], []
    x = end
    for j in sorted(np.flatnonzero(values > 0), key=lambda j: (-values[j], j)):
        up.append(Segment(int(j), float(values[j]), x - float(values[j]), x))
        x -= float(values[j])
    x = end
    for j in sorted(np.flatnonzero(values < 0), key=lambda j: (values[j], j)):
        down.append(Segment(int(j), float(values[j]), x, x - float(values[j])))
        x -= float(values[j])
    return end, up, down


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def render_force_png(
    values: np.ndarray,
    base: np.ndarray,
    output: np.ndarray,
    features: Sequence[str],
    feature_values: np.ndarray | None = None,
    *,
    title: str = "",
    output_name: str = "f(x)",
) -> bytes:
    """A PNG of the force plot: arrows for one instance, stacked bands (original order) for several."""
    # a bare Figure renders to PNG without pyplot; matplotlib.use() would switch the notebook's backend
    from matplotlib.figure import Figure
    from matplotlib.patches import Polygon

    red, blue = _hex(POSITIVE), _hex(NEGATIVE)
    n = values.shape[0]
    if n == 1:
        fig = Figure(figsize=(9, 1.9), dpi=80)
        ax = fig.subplots()
        end, up, down = force_layout(values[0], float(base[0]))
        span = max(sum(s.x1 - s.x0 for s in up + down), 1e-12)
        tip = span * 0.012
        for seg, colour, sign in [(s, red, 1) for s in up] + [(s, blue, -1) for s in down]:
            x0, x1 = seg.x0, seg.x1
            a, b = (x1, x0) if sign < 0 else (x0, x1)  # the arrow points from a to b
            t = tip * sign
            pts = [(a, 0), (b, 0), (b + t, 0.5), (b, 1), (a, 1), (a + t, 0.5)]
            ax.add_patch(Polygon(pts, closed=True, facecolor=colour, edgecolor="white", linewidth=0.8))
            if seg.x1 - seg.x0 > span * 0.08:
                name = features[seg.index]
                if feature_values is not None:
                    name = f"{name} = {feature_values[0, seg.index]:.3g}"
                ax.text((x0 + x1) / 2, -0.35, name, ha="center", va="top", fontsize=7, color=colour)
        lo = min([s.x0 for s in up + down] + [float(base[0]), float(output[0])])
        hi = max([s.x1 for s in up + down] + [float(base[0]), float(output[0])])
        pad = (hi - lo) * 0.05 or 0.5
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-1.2, 2.2)
        ax.axvline(float(base[0]), color="#888", linewidth=0.8, linestyle=":")
        ax.plot([end, end], [-0.1, 1.1], color="black", linewidth=1)
        ax.text(float(base[0]), 1.5, f"base {float(base[0]):.3g}", ha="center", fontsize=8, color="#666")
        ax.text(float(output[0]), 1.5, f"{output_name} = {float(output[0]):.3g}", ha="center", fontsize=9,
                fontweight="bold")
        ax.set_yticks([])
        for side in ("left", "right", "bottom"):
            ax.spines[side].set_visible(False)
        ax.xaxis.tick_top()
    else:
        fig = Figure(figsize=(9, 3.2), dpi=80)
        ax = fig.subplots()
        xs = np.arange(n)
        pos, neg = np.clip(values, 0, None), np.clip(-values, 0, None)
        order = np.argsort(-np.abs(values).mean(0))
        top = output.astype(np.float64).copy()
        for j in order:
            ax.fill_between(xs, top - pos[:, j], top, color=red, linewidth=0, alpha=0.85)
            top = top - pos[:, j]
        bottom = output.astype(np.float64).copy()
        for j in order:
            ax.fill_between(xs, bottom, bottom + neg[:, j], color=blue, linewidth=0, alpha=0.85)
            bottom = bottom + neg[:, j]
        ax.plot(xs, output, color="black", linewidth=1)
        ax.plot(xs, base, color="#888", linewidth=0.8, linestyle=":")
        ax.set_xlabel("instances (original order)", fontsize=8)
        ax.set_ylabel(output_name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
