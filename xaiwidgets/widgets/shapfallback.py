"""The static PNG of TabularPlots (GitHub, nbviewer): each view drawn with matplotlib from the same
``plot_data`` the browser draws."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.shapplots import heat_clip as rules_clip
from .forcefallback import _hex
from .htmlfallback import NEGATIVE, POSITIVE

if TYPE_CHECKING:  # pragma: no cover
    from .shapplots import TabularPlots

RED, BLUE = _hex(POSITIVE), _hex(NEGATIVE)


def _value_colours(c: np.ndarray | None, rng: tuple[float, float] | None) -> Any:
    if c is None or rng is None:
        return "#999999"
    lo, hi = rng
    t = np.clip((c - lo) / (hi - lo), 0, 1) if hi > lo else np.full(c.shape, 0.5)
    neg, pos = np.array(NEGATIVE) / 255, np.array(POSITIVE) / 255
    out = neg[None] + (pos - neg)[None] * np.nan_to_num(t, nan=0.5)[:, None]
    out[~np.isfinite(c)] = 0.6
    return out


def _waterfall(ax: Any, w: dict[str, Any], name: str) -> None:
    k = len(w["value"])
    ys = np.arange(k)[::-1]
    for y, v, s in zip(ys, w["value"], w["start"]):
        ax.barh(y, v, left=s, color=RED if v >= 0 else BLUE, height=0.7)
        ax.text(
            s + v,
            y,
            f" {v:+.3g} ",
            va="center",
            ha="left" if v >= 0 else "right",
            fontsize=7,
        )
    ax.set_yticks(
        ys,
        [
            lab if w["data"] is None or i >= len(w["data"]) else f"{w['data'][i]:.3g} = {lab}"
            for i, lab in enumerate(w["labels"])
        ],
        fontsize=7,
    )
    ax.axvline(w["base"], color="#888", lw=0.8, ls="--")
    ax.set_title(f"{name}: base {w['base']:.3g} → {w['total']:.3g}", fontsize=8)


def render_plots_png(plots: TabularPlots) -> bytes | None:
    from matplotlib.figure import Figure

    views = list(plots.views)
    if not views:
        return None
    fig = Figure(figsize=(8, 3.2 * len(views)), dpi=72)
    axes = np.atleast_1d(fig.subplots(len(views), 1))
    out_name = plots.output_name
    for ax, kind in zip(axes, views):
        if kind == "dependence" and plots.table.data is None:
            ax.set_axis_off()
            continue
        d = plots.plot_data(kind)
        if kind == "waterfall":
            _waterfall(ax, d, plots.table.row_names[d["row"]])
        elif kind == "beeswarm":
            k = len(d["labels"])
            for r, (x, c, rng) in enumerate(zip(d["x"], d["color"], d["color_range"])):
                jitter = (np.arange(len(x)) % 7 - 3) * 0.05
                ax.scatter(x, k - 1 - r + jitter, s=4, c=_value_colours(c, rng), linewidths=0)
            ax.set_yticks(np.arange(k)[::-1], d["labels"], fontsize=7)
            ax.axvline(0, color="#999", lw=0.8)
            ax.set_xlabel(f"attribution (impact on {out_name})", fontsize=8)
        elif kind == "bar":
            k, m = len(d["labels"]), len(d["names"])
            for c in range(m):
                ax.barh(
                    np.arange(k)[::-1] + (m / 2 - c - 0.5) * 0.8 / m,
                    d["bars"][c],
                    height=0.8 / m,
                    label=f"{d['names'][c]} ({d['sizes'][c]})",
                    color=[RED, BLUE, "#2ea043", "#e69100"][c % 4],
                )
            ax.set_yticks(np.arange(k)[::-1], d["labels"], fontsize=7)
            if m > 1:
                ax.legend(fontsize=7)
            ax.set_xlabel("mean |attribution|", fontsize=8)
        elif kind == "heatmap":
            clip = rules_clip(d["matrix"])
            ax.imshow(d["matrix"], aspect="auto", cmap="bwr", vmin=-clip, vmax=clip, interpolation="nearest")
            ax.set_yticks(np.arange(len(d["labels"])), d["labels"], fontsize=7)
            ax.set_xlabel(f"rows ({plots.row_order})", fontsize=8)
        elif kind == "dependence":
            rng = None if d["color"] is None else (float(np.nanmin(d["color"])), float(np.nanmax(d["color"])))
            ax.scatter(d["x"], d["y"], s=6, c=_value_colours(d["color"], rng), linewidths=0)
            names = plots.table.features
            ax.set_xlabel(names[d["feature"]], fontsize=8)
            ax.set_ylabel(f"attribution of {names[d['feature']]}", fontsize=8)
        elif kind == "decision":
            k = len(d["order"])
            for path in d["paths"][:500]:
                ax.plot(path, np.arange(k + 1), lw=0.6, alpha=0.6, color="#555")
            ax.set_yticks(np.arange(k) + 0.5, d["labels"], fontsize=7)
            ax.set_xlabel(out_name, fontsize=8)
        ax.set_title(ax.get_title() or kind, fontsize=8)
    if plots.title:
        fig.suptitle(plots.title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
