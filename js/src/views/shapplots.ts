// TabularPlots: SHAP's plot family, linked by a shared selection (docs/widget-protocol.md, "TabularPlots").
//
// Selectors (stable, used by tests):
//   .xw-shapplots                      root; data-state = ok | error, data-views, data-selection (rows, comma-separated)
//   section.xw-sp-panel[data-kind]     one per view: waterfall | beeswarm | bar | heatmap | dependence | decision
//   svg.xw-sp-waterfall[data-row]      polygon.xw-sp-bar: data-feature (-1: other features), data-value, data-start, data-end
//   canvas.xw-sp-beeswarm / -heatmap / -dependence: the property `xwPoints` holds the drawn dots (pixel x, y;
//                                      row, feature, value); data-hover = the row under the mouse
//   .xw-sp-tick[data-value]            x-axis ticks (x1 = position of the value); .xw-sp-ytick on the dependence plot
//   rect.xw-sp-cbar                    bar plot: data-feature, data-cohort, data-value
//   polyline.xw-sp-path[data-row]      decision paths; polyline.xw-sp-fx the heatmap's f(x) line
//   .xw-sp-status                      the one place a message (error, empty explanation) is shown
import { decodeArray, isArrayDict } from "../lib/arrays";
import { h } from "../lib/dom";
import type { ArrayDict, RenderProps } from "../lib/model";
import { redrawOn } from "../lib/redraw";
import { barPlot, beeswarmPlot, type Ctx, decisionPlot, dependencePlot, heatmapPlot, type PlotData, waterfallPlot } from "../lib/shapdraw";
import { attachTextStyles } from "../lib/textstyles";
import { createTooltip } from "../lib/tooltip";
import css from "../shapplots.css";
import { availableWidth } from "./forceplot";

interface PlotPayload {
  order: ArrayDict;
  fold_count: number;
  fold: ArrayDict | null;
  color_range: ArrayDict | null;
  clustering: ArrayDict;
  interactions: ArrayDict | null;
  heat_clip: number;
  cohorts: { names: string[]; sizes: number[]; order: ArrayDict; bars: ArrayDict; fold_count: number } | null;
  decision: { order: ArrayDict; paths: ArrayDict };
}

/** The traits (docs/widget-protocol.md, "TabularPlots"). */
export interface TabularPlotsTraits {
  views: string[];
  title: string;
  features: string[];
  row_names: string[];
  values: ArrayDict;
  feature_values: ArrayDict | null;
  base_value: ArrayDict;
  output_value: ArrayDict;
  output_name: string;
  max_display: number;
  plot: PlotPayload | Record<string, never>;
  row_order: string;
  dependence_feature: number;
  color_feature: number;
  selection: number[];
  row: number;
}

const TRAITS: (keyof TabularPlotsTraits)[] = [
  "views", "features", "values", "feature_values", "base_value", "output_value", "output_name", "row_names", "title",
  "max_display", "plot", "row_order", "dependence_feature", "color_feature", "selection", "row",
];

const arr = (x: unknown): ArrayLike<number> | null => (isArrayDict(x) ? decodeArray(x).data : null);

function decode(model: RenderProps<TabularPlotsTraits>["model"]): PlotData | null {
  const v = model.get("values");
  const plot = model.get("plot") as PlotPayload;
  if (!isArrayDict(v) || !plot || !isArrayDict(plot.order)) return null;
  const values = decodeArray(v);
  if (values.shape.length !== 2) throw new Error(`xaiwidgets: values must be (N, d), got [${values.shape.join(", ")}]`);
  const [n, d] = values.shape;
  const base = arr(model.get("base_value"));
  const output = arr(model.get("output_value"));
  if (!base || !output || base.length !== n || output.length !== n) throw new Error("xaiwidgets: base_value and output_value need one value per row");
  const c = plot.cohorts;
  return {
    n, d, values: values.data, featureValues: arr(model.get("feature_values")), base, output,
    order: Array.from(arr(plot.order) ?? [], Number), fold: arr(plot.fold), foldCount: plot.fold_count ?? 0,
    colorRange: arr(plot.color_range), clustering: arr(plot.clustering), interactions: arr(plot.interactions),
    cohorts: c ? { names: c.names, sizes: c.sizes, order: arr(c.order) ?? [], bars: arr(c.bars) ?? [], foldCount: c.fold_count } : null,
    decisionOrder: Array.from(arr(plot.decision?.order) ?? [], Number), decisionPaths: arr(plot.decision?.paths),
  };
}

/** The theme's background as RGB (the heatmap mixes its colours into it). */
function background(el: HTMLElement): [number, number, number] {
  const m = getComputedStyle(el).backgroundColor.match(/[\d.]+/g);
  if (!m || (m.length === 4 && Number(m[3]) === 0)) return [255, 255, 255];
  return [Number(m[0]), Number(m[1]), Number(m[2])];
}

function render({ model, el }: RenderProps<TabularPlotsTraits>): () => void {
  attachTextStyles(el);
  const style = document.createElement("style");
  style.textContent = css;
  el.append(style);
  const title = h("div", "xw-title");
  const status = h("div", "xw-sp-status", { role: "status" });
  const body = h("div", "xw-sp-body");
  const root = h("div", "xw-widget xw-shapplots", {}, [title, status, body]);
  const tooltip = createTooltip(root);
  el.append(root);

  /** The one place any state message is shown (errors, an empty explanation). */
  function setStatus(state: "ok" | "empty" | "error", message = ""): void {
    root.dataset.state = state;
    status.textContent = message;
    status.hidden = !message;
    status.classList.toggle("xw-error", state === "error");
  }

  const select = (rows: number[], add: boolean): void => {
    const current = new Set(add ? model.get("selection") ?? [] : []);
    for (const r of rows) if (add && current.has(r)) current.delete(r); else current.add(r);
    const next = [...current].sort((a, b) => a - b);
    model.set("selection", next);
    if (rows.length) model.set("row", rows[0]);
    model.save_changes();
  };
  const set = (key: "row_order" | "dependence_feature" | "color_feature", value: string | number): void => {
    (model.set as (k: string, v: unknown) => void)(key, value);
    model.save_changes();
  };

  let lastWidth = 0;
  const width = (): number => Math.round(Math.max(420, Math.min(1000, el.clientWidth >= 420 ? el.clientWidth : availableWidth(el))));

  function draw(): void {
    tooltip.hide();
    title.textContent = model.get("title") ?? "";
    title.hidden = !title.textContent;
    try {
      const data = decode(model);
      if (!data) {
        body.replaceChildren();
        setStatus("empty", "no explanation to plot");
        return;
      }
      const views = model.get("views") ?? [];
      const selection = new Set(model.get("selection") ?? []);
      const ctx: Ctx = {
        data, names: model.get("features") ?? [], rowNames: model.get("row_names") ?? [], outputName: model.get("output_name") || "f(x)",
        maxDisplay: model.get("max_display") ?? 10, width: (lastWidth = width()), tooltip, selection, row: model.get("row") ?? 0,
        rowOrder: model.get("row_order") ?? "clustering", dependenceFeature: model.get("dependence_feature") ?? -1,
        colorFeature: model.get("color_feature") ?? -1, select, set, background: background(root),
        foreground: getComputedStyle(root).color || "rgb(20, 20, 20)",
      };
      const clip = (model.get("plot") as PlotPayload).heat_clip ?? 1;
      const make: Record<string, () => HTMLElement> = {
        waterfall: () => waterfallPlot(ctx), beeswarm: () => beeswarmPlot(ctx), bar: () => barPlot(ctx),
        heatmap: () => heatmapPlot(ctx, clip), dependence: () => dependencePlot(ctx), decision: () => decisionPlot(ctx),
      };
      body.replaceChildren(...views.filter((v) => v in make).map((v) => make[v]()));
      root.dataset.views = views.join(",");
      root.dataset.selection = [...selection].join(",");
      setStatus("ok");
    } catch (e) {
      setStatus("error", e instanceof Error ? e.message : String(e));
    }
  }

  const unbind = redrawOn(model, TRAITS, el, draw, width, () => lastWidth);

  return () => {
    unbind();
    root.remove();
    style.remove();
  };
}

export default { render };
