// ForcePlot: SHAP's additive force plot, own SVG (docs/widget-protocol.md, "ForcePlot").
//
// Selectors (stable, used by tests):
//   .xw-forceplot                         root; data-state = ok | empty | error, data-n = instances,
//                                         data-order = similarity | output | original
//   svg.xw-force-single                   one instance (N = 1, or the `selected` one below the stack):
//     polygon.xw-force-arrow              data-kind = up | down, data-feature, data-value; points start with
//                                         the top edge: "x0,top x1,top ..." (its length = |contribution| in px)
//     .xw-force-tick[data-value]          axis ticks (x attribute on the line = position of the value)
//     .xw-force-output  .xw-force-base    output and base labels; data-value
//     text.xw-force-label                 feature labels (those that fit), data-feature
//   svg.xw-force-stack                    several instances, stacked and ordered:
//     polygon.xw-force-band               data-feature, data-kind = up | down
//     polyline.xw-force-out-line          the output line; rect.xw-force-hit captures hover / click
//     line.xw-force-guide                 hovered instance (data-instance = original index)
//   select.xw-force-order                 order of the stack (writes trait `order`)
//   .xw-force-note                        when base + Σ differs from the output (IG gap): both values
//   .xw-tooltip                           hover text: feature, value, contribution / instance, output
import { decodeArray, isArrayDict } from "../lib/arrays";
import { h } from "../lib/dom";
import { formatValue } from "../lib/format";
import { featureOrder, forceLayout, instanceOrder, placeLabels, stackBands, type Segment } from "../lib/force";
import type { ArrayDict, RenderProps } from "../lib/model";
import { redrawOn } from "../lib/redraw";
import { NEGATIVE, POSITIVE, rgb } from "../lib/signed";
import { niceTicks, svg } from "../lib/svg";
import { attachTextStyles } from "../lib/textstyles";
import { createTooltip, type Tooltip } from "../lib/tooltip";

export interface ForceTraits {
  features: string[];
  values: ArrayDict;
  feature_values: ArrayDict | null;
  base_value: ArrayDict;
  output_value: ArrayDict;
  output_name: string;
  instance_names: string[];
  similarity_order: ArrayDict;
  order: string;
  selected: number;
  title: string;
}

const TRAITS: (keyof ForceTraits)[] = [
  "features", "values", "feature_values", "base_value", "output_value", "output_name", "instance_names",
  "similarity_order", "order", "selected", "title",
];

const RED = rgb(POSITIVE);
const BLUE = rgb(NEGATIVE);
const CHAR_PX = 6.3; // average glyph width at 11px, for label collision tests
const TIP = 6;

interface Data {
  n: number;
  d: number;
  values: ArrayLike<number>;
  featureValues: ArrayLike<number> | null;
  base: ArrayLike<number>;
  output: ArrayLike<number>;
  similarity: ArrayLike<number> | null;
}

function decode(model: RenderProps<ForceTraits>["model"]): Data | null {
  const v = model.get("values");
  const b = model.get("base_value");
  if (!isArrayDict(v) || !isArrayDict(b)) return null;
  const values = decodeArray(v);
  if (values.shape.length !== 2) throw new Error(`xaiwidgets: values must be (N, d), got [${values.shape.join(", ")}]`);
  const [n, d] = values.shape;
  const base = decodeArray(b).data;
  const o = model.get("output_value");
  const output = isArrayDict(o) ? decodeArray(o).data : new Float32Array(n).fill(NaN);
  const fv = model.get("feature_values");
  const featureValues = isArrayDict(fv) ? decodeArray(fv).data : null;
  const so = model.get("similarity_order");
  const similarity = isArrayDict(so) ? decodeArray(so).data : null;
  if (base.length !== n || output.length !== n) throw new Error("xaiwidgets: base_value and output_value need one value per instance");
  if (featureValues && featureValues.length !== n * d) throw new Error("xaiwidgets: feature_values must be (N, d) like values");
  return { n, d, values: values.data, featureValues, base, output, similarity };
}

const signText = (v: number): string => (v > 0 ? "+" : "") + formatValue(v);

function featureLabel(names: string[], data: Data, i: number, j: number): string {
  const name = names[j] ?? `feature ${j}`;
  return data.featureValues ? `${name} = ${formatValue(data.featureValues[i * data.d + j])}` : name;
}

/** One instance as arrows on a number line. */
function singlePlot(data: Data, i: number, names: string[], outputName: string, width: number, tooltip: Tooltip): SVGSVGElement {
  const row = Array.from({ length: data.d }, (_, j) => data.values[i * data.d + j]);
  const lay = forceLayout(row, data.base[i], data.output[i]);
  const left = 16;
  const right = width - 16;
  const pad = (lay.hi - lay.lo) * 0.04 || 0.5;
  const lo = lay.lo - pad;
  const hi = lay.hi + pad;
  const x = (v: number): number => left + ((v - lo) / (hi - lo)) * (right - left);
  const top = 50;
  const bottom = 72;
  const mid = (top + bottom) / 2;
  const height = 144;
  const root = svg("svg", { class: "xw-force-svg xw-force-single", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  root.setAttribute("aria-label", `force plot: base ${formatValue(lay.base)}, ${outputName} ${formatValue(lay.end)}`);

  // axis with ticks
  const axis = svg("g", { class: "xw-force-axis" });
  axis.append(svg("line", { x1: left, x2: right, y1: 42, y2: 42 }));
  for (const t of niceTicks(lo, hi, Math.max(2, Math.floor((right - left) / 90)))) {
    const tx = x(t);
    axis.append(
      svg("line", { class: "xw-force-tick", "data-value": t, x1: tx, x2: tx, y1: 42, y2: 46 }),
      svg("text", { class: "xw-muted", x: tx, y: 38, "text-anchor": "middle", "font-size": 10 }, formatValue(t)),
    );
  }
  root.append(axis);

  // base and output marks
  const xb = x(lay.base);
  const xe = x(lay.end);
  root.append(svg("line", { class: "xw-force-base-line", x1: xb, x2: xb, y1: 20, y2: bottom + 4 }));
  const out = Number.isFinite(lay.output) ? lay.output : lay.end;
  const outLabel = `${outputName} = ${formatValue(out)}`;
  const baseLabel = `base value ${formatValue(lay.base)}`;
  const clampX = (cx: number, text: string): number => Math.max(left + (text.length * CHAR_PX) / 2, Math.min(right - (text.length * CHAR_PX) / 2, cx));
  const ox = clampX(xe, outLabel);
  const bx = clampX(xb, baseLabel);
  const collide = Math.abs(ox - bx) < ((outLabel.length + baseLabel.length) * CHAR_PX) / 2 + 8;
  root.append(
    svg("text", { class: "xw-force-output", "data-value": out, x: ox, y: 16, "text-anchor": "middle" }, outLabel),
    svg("text", { class: "xw-force-base xw-muted", "data-value": lay.base, x: bx, y: collide ? 30 : 16, "text-anchor": "middle" }, baseLabel),
  );
  if (Number.isFinite(lay.output) && Math.abs(lay.output - lay.end) > 1e-6 * Math.max(1, Math.abs(lay.output))) {
    // the attributions do not add up to the output (e.g. an IG completeness gap): mark both
    const xo = x(lay.output);
    root.append(svg("line", { class: "xw-force-gap-line", x1: xo, x2: xo, y1: 20, y2: bottom + 4 }));
    root.dataset.gap = String(lay.output - lay.end);
  }

  // arrows: the top edge first, so its length is the contribution
  const arrows = svg("g");
  const poly = (seg: Segment, kind: "up" | "down"): SVGPolygonElement => {
    const a = x(seg.x0);
    const b = x(seg.x1);
    const t = Math.min(TIP, Math.max(0, b - a));
    const pts = kind === "up"
      ? [[a, top], [b, top], [b + t, mid], [b, bottom], [a, bottom], [a + t, mid]]
      : [[b, top], [a, top], [a - t, mid], [a, bottom], [b, bottom], [b - t, mid]];
    const p = svg("polygon", {
      class: "xw-force-arrow", "data-kind": kind, "data-feature": seg.index, "data-value": seg.value,
      points: pts.map(([px, py]) => `${px.toFixed(3)},${py}`).join(" "),
    });
    p.style.fill = kind === "up" ? RED : BLUE;
    const show = (): void => {
      p.classList.add("xw-hot");
      tooltip.show([
        names[seg.index] ?? `feature ${seg.index}`,
        ...(data.featureValues ? [`value ${formatValue(data.featureValues[i * data.d + seg.index])}`] : []),
        `contribution ${signText(seg.value)} (pushes ${kind === "up" ? "up" : "down"})`,
      ], p);
    };
    p.addEventListener("mouseenter", show);
    p.addEventListener("mouseleave", () => { p.classList.remove("xw-hot"); tooltip.hide(); });
    return p;
  };
  // far segments first so the arrow tips nearest the output stay on top
  for (const s of [...lay.up].reverse()) arrows.append(poly(s, "up"));
  for (const s of [...lay.down].reverse()) arrows.append(poly(s, "down"));
  root.append(arrows);
  root.append(svg("line", { class: "xw-force-out-line", x1: xe, x2: xe, y1: 20, y2: bottom + 4 }));

  // labels of the largest contributions that fit, two rows
  const segs = [...lay.up.map((s) => ({ s, kind: "up" })), ...lay.down.map((s) => ({ s, kind: "down" }))]
    .sort((p, q) => Math.abs(q.s.value) - Math.abs(p.s.value));
  const texts = segs.map(({ s }) => featureLabel(names, data, i, s.index));
  const placed = placeLabels(segs.map(({ s }, k) => ({ x: (x(s.x0) + x(s.x1)) / 2, width: texts[k].length * CHAR_PX })), left, right, 2);
  segs.forEach(({ s, kind }, k) => {
    const { row, x: lx } = placed[k];
    if (row < 0) return;
    const colour = kind === "up" ? RED : BLUE;
    const ly = 96 + row * 16;
    const cx = (x(s.x0) + x(s.x1)) / 2;
    root.append(svg("path", { class: "xw-force-leader", d: `M${cx.toFixed(1)},${bottom} L${lx.toFixed(1)},${ly - 11}`, stroke: colour }));
    const label = svg("text", { class: "xw-force-label", "data-feature": s.index, x: lx, y: ly, "text-anchor": "middle", style: `fill: ${colour}` }, texts[k]);
    root.append(label);
  });
  // what the axis measures
  root.append(svg("text", { class: "xw-muted xw-force-axis-label", x: (left + right) / 2, y: height - 3, "text-anchor": "middle", "font-size": 10 },
    `axis: ${outputName} (model output units) · base value + attributions = ${outputName}`));
  return root;
}

/** Several instances: the arrows turned vertical, one column per instance, in the chosen order. */
function stackPlot(
  data: Data, order: number[], names: string[], instances: string[], outputName: string, width: number,
  selected: number, tooltip: Tooltip, onSelect: (i: number) => void,
): SVGSVGElement {
  const features = featureOrder(data.values, data.n, data.d);
  const { bands, end, lo, hi } = stackBands(data.values, data.d, data.base, order, features);
  const box = { left: 56, right: width - 14, top: 10, bottom: 222 };
  const height = 250;
  const m = order.length;
  const pad = (hi - lo) * 0.05 || 0.5;
  const x = (k: number): number => box.left + (m > 1 ? (k / (m - 1)) * (box.right - box.left) : (box.right - box.left) / 2);
  const y = (v: number): number => box.bottom - ((v - (lo - pad)) / (hi - lo + 2 * pad)) * (box.bottom - box.top);
  const root = svg("svg", { class: "xw-force-svg xw-force-stack", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  root.setAttribute("aria-label", `stacked force plot of ${m} instances`);
  const axis = svg("g", { class: "xw-force-axis" });
  axis.append(svg("line", { x1: box.left, x2: box.left, y1: box.top, y2: box.bottom }));
  for (const t of niceTicks(lo - pad, hi + pad, 5)) {
    axis.append(
      svg("line", { class: "xw-force-tick", "data-value": t, x1: box.left - 4, x2: box.left, y1: y(t), y2: y(t) }),
      svg("text", { class: "xw-muted", x: box.left - 6, y: y(t) + 3, "text-anchor": "end", "font-size": 10 }, formatValue(t)),
    );
  }
  axis.append(svg("text", {
    class: "xw-muted xw-force-axis-label", x: 10, y: (box.top + box.bottom) / 2, "text-anchor": "middle", "font-size": 10,
    transform: `rotate(-90 10 ${(box.top + box.bottom) / 2})`,
  }, `${outputName} (model output units)`));
  root.append(axis);
  const g = svg("g");
  bands.forEach((band, b) => {
    const pts: string[] = [];
    for (let k = 0; k < m; k++) pts.push(`${x(k).toFixed(2)},${y(band.hi[k]).toFixed(2)}`);
    for (let k = m - 1; k >= 0; k--) pts.push(`${x(k).toFixed(2)},${y(band.lo[k]).toFixed(2)}`);
    const p = svg("polygon", { class: "xw-force-band", "data-feature": band.feature, "data-kind": band.kind, points: pts.join(" ") });
    p.style.fill = band.kind === "up" ? RED : BLUE;
    p.style.opacity = String(b % 2 ? 0.72 : 0.92);
    g.append(p);
  });
  root.append(g);
  const basePts = order.map((i, k) => `${x(k).toFixed(2)},${y(data.base[i]).toFixed(2)}`).join(" ");
  root.append(
    svg("polyline", { class: "xw-force-base-line", points: basePts, fill: "none" }),
    svg("polyline", { class: "xw-force-out-line", points: Array.from(end, (v, k) => `${x(k).toFixed(2)},${y(v).toFixed(2)}`).join(" ") }),
    svg("text", { class: "xw-muted", x: (box.left + box.right) / 2, y: height - 6, "text-anchor": "middle" },
      `${m} instances · ${outputName} (black line), base value (dashed)`),
  );
  const guide = svg("line", { class: "xw-force-guide", x1: -10, x2: -10, y1: box.top, y2: box.bottom });
  guide.style.display = "none";
  const sel = order.indexOf(selected);
  if (sel >= 0) root.append(svg("line", { class: "xw-force-selected", "data-instance": selected, x1: x(sel), x2: x(sel), y1: box.top, y2: box.bottom }));
  const hit = svg("rect", { class: "xw-force-hit", x: box.left - 4, y: box.top, width: box.right - box.left + 8, height: box.bottom - box.top });
  const position = (ev: MouseEvent): number => {
    const r = hit.getBoundingClientRect();
    const scale = r.width > 0 ? (box.right - box.left + 8) / r.width : 1;
    const px = (ev.clientX - r.left) * scale + box.left - 4;
    return Math.max(0, Math.min(m - 1, Math.round(m > 1 ? ((px - box.left) / (box.right - box.left)) * (m - 1) : 0)));
  };
  hit.addEventListener("mousemove", (ev) => {
    const k = position(ev);
    const i = order[k];
    guide.setAttribute("x1", String(x(k)));
    guide.setAttribute("x2", String(x(k)));
    guide.dataset.instance = String(i);
    guide.style.display = "";
    const row = Array.from({ length: data.d }, (_, j) => data.values[i * data.d + j]);
    const top = row.map((v, j) => [v, j]).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0])).slice(0, 3).filter(([v]) => v !== 0);
    const out = Number.isFinite(data.output[i]) ? data.output[i] : end[k];
    tooltip.show([
      instances[i] ?? `instance ${i}`,
      `${outputName} = ${formatValue(out)} · base ${formatValue(data.base[i])}`,
      ...top.map(([v, j]) => `${featureLabel(names, data, i, j)}: ${signText(v)}`),
      "click to show this instance",
    ], { x: ev.clientX, y: ev.clientY });
  });
  hit.addEventListener("mouseleave", () => { guide.style.display = "none"; tooltip.hide(); });
  hit.addEventListener("click", (ev) => onSelect(order[position(ev)]));
  root.append(guide, hit);
  return root;
}

const MIN_WIDTH = 300;

/** The content width of the nearest ancestor of `el` that is not shrink-to-fit (inline-*), or 760. */
export function availableWidth(el: HTMLElement): number {
  const own = getComputedStyle(el);
  if (!own.display.startsWith("inline") && el.clientWidth > 0 && !shrinks(el)) return el.clientWidth;
  for (let node = el.parentElement; node; node = node.parentElement) {
    const cs = getComputedStyle(node);
    if (cs.display.startsWith("inline") || shrinks(node) || node.clientWidth === 0) continue;
    return node.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  }
  return 760;
}

/** Whether `node` is sized by its content: a child of an inline-flex / inline-grid / inline-block parent. */
function shrinks(node: HTMLElement): boolean {
  const parent = node.parentElement;
  return parent !== null && getComputedStyle(parent).display.startsWith("inline");
}

function render({ model, el }: RenderProps<ForceTraits>): () => void {
  attachTextStyles(el);
  const title = h("div", "xw-title");
  const orderSelect = h("select", "xw-force-order", { "aria-label": "order of the instances" }, [
    h("option", "", { value: "similarity" }, ["by similarity"]),
    h("option", "", { value: "output" }, ["by output"]),
    h("option", "", { value: "original" }, ["original order"]),
  ]);
  const controls = h("div", "xw-row xw-force-controls", {}, [h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["Order"]), orderSelect])]);
  const stackHolder = h("div", "xw-force-stack-holder");
  const singleTitle = h("div", "xw-force-single-title");
  const key = h("div", "xw-force-key", {}, [
    h("span", "", { style: `color: ${RED}` }, ["▶ pushes the output higher"]),
    h("span", "", { style: `color: ${BLUE}` }, ["◀ pushes it lower"]),
  ]);
  const singleHolder = h("div", "xw-force-single-holder");
  const note = h("div", "xw-caption xw-force-note");
  const error = h("div", "xw-error");
  const root = h("div", "xw-widget xw-forceplot", {}, [title, controls, stackHolder, singleTitle, key, singleHolder, note, error]);
  const tooltip = createTooltip(root);
  el.append(root);

  const onOrder = (): void => {
    model.set("order", orderSelect.value);
    model.save_changes();
  };
  orderSelect.addEventListener("change", onOrder);
  const onSelect = (i: number): void => {
    model.set("selected", i);
    model.save_changes();
  };

  let lastWidth = 0;
  function width(): number {
    // A shrink-to-fit host (inline-flex parents) reports only its content's width: then the room is
    // that of the nearest ancestor laid out as a block. A narrow output (< 480 px) gets a compact plot
    // of its width (at least MIN_WIDTH; the holders scroll below that), never a 760 px one cut off.
    const w = el.clientWidth;
    if (w >= 480) return Math.round(Math.min(1100, w));
    return Math.round(Math.max(MIN_WIDTH, Math.min(760, availableWidth(el))));
  }

  function draw(): void {
    title.textContent = model.get("title") ?? "";
    title.hidden = !title.textContent;
    error.textContent = "";
    tooltip.hide();
    try {
      const data = decode(model);
      if (!data || data.n === 0) {
        root.dataset.state = "empty";
        stackHolder.replaceChildren();
        singleHolder.replaceChildren();
        controls.hidden = singleTitle.hidden = key.hidden = true;
        return;
      }
      const names = model.get("features") ?? [];
      const instances = model.get("instance_names") ?? [];
      const outputName = model.get("output_name") || "f(x)";
      const w = (lastWidth = width());
      root.dataset.n = String(data.n);
      const kind = model.get("order") ?? "similarity";
      root.dataset.order = kind;
      orderSelect.value = kind;
      const selected = model.get("selected") ?? -1;
      stackHolder.hidden = data.n <= 1;
      if (data.n > 1) {
        controls.hidden = false;
        const order = instanceOrder(kind, Array.from(data.output, (v, i) => (Number.isFinite(v) ? v : data.base[i])), data.similarity);
        stackHolder.replaceChildren(stackPlot(data, order, names, instances, outputName, w, selected, tooltip, onSelect));
      } else {
        controls.hidden = true;
        stackHolder.replaceChildren();
      }
      const one = data.n === 1 ? 0 : selected;
      if (one >= 0 && one < data.n) {
        singleTitle.hidden = data.n === 1;
        singleTitle.textContent = instances[one] ?? `instance ${one}`;
        const plot = singlePlot(data, one, names, outputName, w, tooltip);
        singleHolder.replaceChildren(plot);
        key.hidden = false;
        const gap = Number(plot.dataset.gap);
        note.textContent = plot.dataset.gap === undefined ? "" :
          `The arrows end at base + Σ = ${formatValue(data.output[one] - gap)}, ${outputName} = ` +
          `${formatValue(data.output[one])} (dotted): the attributions miss the output by ${formatValue(gap)}.`;
      } else {
        singleTitle.hidden = key.hidden = true;
        singleHolder.replaceChildren();
        note.textContent = "";
      }
      root.dataset.state = "ok";
    } catch (e) {
      root.dataset.state = "error";
      error.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  const unbind = redrawOn(model, TRAITS, el, draw, width, () => lastWidth);

  return () => {
    unbind();
    orderSelect.removeEventListener("change", onOrder);
    root.remove();
  };
}

export default { render };
