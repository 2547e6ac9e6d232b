// DatasetExplorer: a virtualised grid of a dataset's explanations with filters and sorting, the SpRAy
// scatter (brushing filters the grid), the eigenvalue plot and cluster means, and drill-down into the
// explain dashboard (docs/widget-protocol.md, "DatasetExplorer").
//
// Selectors (stable, used by tests):
//   .xw-explorer                   root; data-status = idle | running | done | cancelled | error
//   .xw-title  .xw-progress[role=progressbar]  .xw-status  button.xw-cancel
//   .xw-explorer-message           a message from the kernel or a failed request (role=alert)
//   .xw-count                      "<shown> of <n> items"
//   select.xw-f-label / .xw-f-pred / .xw-f-correct / .xw-f-cluster / .xw-sort / .xw-method
//   input.xw-f-confmin / .xw-f-confmax   confidence range
//   input.xw-f-only                "selection only" (checked when a brush selected points)
//   .xw-grid (scroll box) > .xw-grid-inner > .xw-etile[data-index][data-pos]   one per visible tile:
//       canvas.xw-etile-canvas (data-loaded="true" once its pixels arrived), .xw-etile-label,
//       .xw-etile-pred (.xw-wrong when wrong), .xw-etile-conf; .xw-selected when in `selection`.
//       click (or Enter) sends {type: "drill", index}; shift-click toggles the item in `selection`
//   .xw-spray  select.xw-spray-class  select.xw-spray-space (maps | activations)  button.xw-spray-run
//     .xw-spray-state  select.xw-colour-by
//     canvas.xw-scatter (drag: rectangle brush; hover: .xw-tooltip with canvas.xw-hover-thumb)
//     canvas.xw-eigen (eigenvalues; data-gap = the eigengap's k)  .xw-means > .xw-mean[data-cluster]
//   .xw-drill[data-index]  .xw-drill-host (the dashboard view)  .xw-drill-error  button.xw-drill-close
import { asBytes } from "../lib/arrays";
import { getLUT } from "../lib/colormaps";
import { h } from "../lib/dom";
import {
  clusterColour, clusterOfRows, countBy, decodeMeta, DEFAULT_FILTERS, filterRows, gridRange, nearestPoint,
  pointsInRect, projectPoints, rowLookup, type Filters, type Meta, type SortKey,
} from "../lib/explorer";
import { formatPercent } from "../lib/format";
import type { RGBAImage } from "../lib/image";
import { decodeArray, isArrayDict } from "../lib/arrays";
import type { AnyModel, ArrayDict, Bytes, DisplayTraits, JobTraits, KernelMessage, RenderProps } from "../lib/model";
import { drawOverlay, overlayStyle } from "../lib/overlay";
import { createRequests } from "../lib/requests";
import { toScalarMap } from "../lib/scalarmap";
import { createJobLine } from "../lib/status";
import { attachViewStyles } from "../lib/styles";
import { createTooltip } from "../lib/tooltip";
import dashboardView from "./dashboard";

const TILE_W = 104;
const ROW_H = 140;
const MAX_PAGE = 256;
const MAX_INFLIGHT = 2;
const CACHE_LIMIT = 3000;
const SCATTER = 280;

const CSS = `
.xw-explorer { display: flex; flex-direction: column; gap: 8px; padding: 10px; max-width: 100%;
  border: 1px solid var(--xw-border); border-radius: 6px; background: var(--xw-bg); position: relative; }
.xw-ex-top { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.xw-ex-top .xw-title { margin: 0; flex: 1; }
.xw-ex-body { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
.xw-ex-main { display: flex; flex-direction: column; gap: 6px; flex: 1 1 560px; min-width: 300px; }
.xw-filters { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; font-size: 12px; }
.xw-filters input[type="number"] { width: 56px; font: inherit; color: var(--xw-fg); background: var(--xw-bg);
  border: 1px solid var(--xw-border); border-radius: 3px; }
.xw-count { font-size: 12px; color: var(--xw-fg2); font-variant-numeric: tabular-nums; }
.xw-grid { position: relative; height: 460px; overflow-y: auto; overflow-x: hidden; border: 1px solid var(--xw-border);
  border-radius: 4px; background: var(--xw-bg); will-change: transform; }
.xw-grid-inner { position: relative; width: 100%; contain: layout style; }
.xw-etile { position: absolute; width: ${TILE_W - 6}px; display: flex; flex-direction: column; gap: 1px; padding: 2px;
  border: 2px solid transparent; border-radius: 4px; cursor: pointer; font-size: 11px; line-height: 1.25;
  contain: layout paint style; }
.xw-etile:hover { background: var(--xw-bg2); }
.xw-etile:focus-visible { outline: 2px solid var(--xw-accent); outline-offset: 1px; }
.xw-etile.xw-selected { border-color: var(--xw-accent); }
.xw-etile-canvas { width: 92px; height: 92px; display: block; background: var(--xw-bg2); image-rendering: pixelated;
  object-fit: contain; }
.xw-etile-label, .xw-etile-pred { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.xw-etile-label { color: var(--xw-fg2); }
.xw-etile-pred.xw-wrong { color: var(--xw-error); font-weight: 600; }
.xw-etile-conf { color: var(--xw-fg2); font-variant-numeric: tabular-nums; font-size: 10px; white-space: nowrap; overflow: hidden; }
.xw-ex-side { display: flex; flex-direction: column; gap: 6px; width: ${SCATTER + 4}px; }
.xw-spray-head { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; font-size: 12px; }
.xw-spray-state { font-size: 12px; color: var(--xw-fg2); }
.xw-scatter, .xw-eigen { display: block; border: 1px solid var(--xw-border); border-radius: 3px; background: var(--xw-bg); }
.xw-scatter { width: ${SCATTER}px; height: ${SCATTER}px; cursor: crosshair; }
.xw-eigen { width: ${SCATTER}px; height: 90px; }
.xw-means { display: flex; flex-wrap: wrap; gap: 4px; }
.xw-mean { display: flex; flex-direction: column; align-items: center; font-size: 11px; cursor: pointer; padding: 1px;
  border: 2px solid transparent; border-radius: 3px; background: none; color: var(--xw-fg); }
.xw-mean.xw-on { border-color: var(--xw-accent); }
.xw-mean canvas { width: 48px; height: 48px; display: block; }
.xw-explorer-message { color: var(--xw-error); font-size: 12px; white-space: pre-wrap; }
.xw-explorer-message:empty { display: none; }
.xw-drill { display: flex; flex-direction: column; gap: 6px; border-top: 1px solid var(--xw-border); padding-top: 8px; }
.xw-drill-head { display: flex; gap: 10px; align-items: baseline; font-weight: 600; }
.xw-drill-note { font-size: 12px; color: var(--xw-fg2); }
.xw-tooltip { position: absolute; z-index: 10; background: var(--xw-bg); color: var(--xw-fg); border: 1px solid var(--xw-border);
  border-radius: 4px; padding: 4px 6px; font-size: 11px; pointer-events: none; box-shadow: 0 2px 6px rgba(0,0,0,.2); }
.xw-hover-thumb { width: 64px; height: 64px; display: block; }
.xw-swatch { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 3px; }
`;

interface ExplorerTraits extends DisplayTraits, JobTraits {
  meta: Record<string, unknown>;
  classes: string[];
  methods: string[];
  method: string;
  has_images: boolean;
  has_model: boolean;
  spray: Record<string, unknown>;
  selection: number[];
  drill: { index?: number; model_id?: string; error?: string };
  message: string;
  preview: Record<string, unknown>;
  title: string;
}

/** One item's pixels: the thumbnail (RGBA) when the data is at hand, the quantised map and its range. */
interface Pixels {
  image: RGBAImage | null;
  codes: Uint8Array;
  mapH: number;
  mapW: number;
  vmin: number;
  vmax: number;
}

interface PageHeader extends KernelMessage {
  indices: number[];
  method: string;
  ranges: number[];
  maps: { dtype: string; shape: number[] };
  images?: { dtype: string; shape: number[] };
}

function rgbaOf(bytes: Uint8Array, offset: number, side: number, w: number): RGBAImage {
  const n = side * w;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[4 * i] = bytes[offset + 3 * i];
    rgba[4 * i + 1] = bytes[offset + 3 * i + 1];
    rgba[4 * i + 2] = bytes[offset + 3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  return { width: w, height: side, rgba };
}

/** A page message (header + buffers [maps, images?]) as Pixels per dataset index. */
export function decodePage(msg: PageHeader, buffers: Bytes[]): Map<number, Pixels> {
  const out = new Map<number, Pixels>();
  const codes = asBytes(buffers[0]);
  const [n, mh, mw] = msg.maps.shape;
  const img = msg.images && buffers[1] ? asBytes(buffers[1]) : null;
  const [, ih = 0, iw = 0] = msg.images?.shape ?? [];
  for (let k = 0; k < n; k++) {
    out.set(msg.indices[k], {
      image: img ? rgbaOf(img, k * ih * iw * 3, ih, iw) : null,
      codes: codes.slice(k * mh * mw, (k + 1) * mh * mw),
      mapH: mh, mapW: mw, vmin: msg.ranges[2 * k], vmax: msg.ranges[2 * k + 1],
    });
  }
  return out;
}

function drawPixels(canvas: HTMLCanvasElement, px: Pixels, display: DisplayTraits): void {
  const map = toScalarMap({ dtype: "uint8", shape: [px.mapH, px.mapW], data: px.codes, vmin: px.vmin, vmax: px.vmax });
  const signed = px.vmin < 0 && px.vmax > 0;
  drawOverlay(canvas, px.image, map, overlayStyle(map, display, signed, px.image !== null));
}

function render({ model, el }: RenderProps<ExplorerTraits>): () => void {
  const extra = attachViewStyles(el, CSS);
  const requests = createRequests(model);
  const job = createJobLine(model, { requests, onRender: () => { sprayRun.disabled = isPreview || meta.n === 0; } });
  const title = h("div", "xw-title");
  const message = h("div", "xw-explorer-message", { role: "alert" });
  const count = h("span", "xw-count", { "aria-live": "polite" });
  const sel = (cls: string, label: string): HTMLSelectElement => h("select", cls, { "aria-label": label });
  const fLabel = sel("xw-f-label", "true class");
  const fPred = sel("xw-f-pred", "predicted class");
  const fCorrect = sel("xw-f-correct", "correct or wrong");
  const fCluster = sel("xw-f-cluster", "SpRAy cluster");
  const fSort = sel("xw-sort", "sort by");
  const fMethod = sel("xw-method", "method");
  const fColormap = sel("xw-colormap", "colour map");
  const confMin = h("input", "xw-f-confmin", { type: "number", min: 0, max: 1, step: 0.05, value: 0, "aria-label": "minimum confidence" });
  const confMax = h("input", "xw-f-confmax", { type: "number", min: 0, max: 1, step: 0.05, value: 1, "aria-label": "maximum confidence" });
  const onlySel = h("input", "xw-f-only", { type: "checkbox", "aria-label": "selection only" });
  const onlyText = h("span", "xw-control-name", {}, ["selection only"]);
  const opacity = h("input", "xw-opacity", { type: "range", min: 0, max: 1, step: 0.05, "aria-label": "overlay opacity" });
  const absolute = h("input", "xw-absolute", { type: "checkbox", "aria-label": "absolute values" });
  const control = (name: string, input: HTMLElement): HTMLElement =>
    h("label", "xw-control", {}, [h("span", "xw-control-name", {}, [name]), input]);
  const filters = h("div", "xw-filters", {}, [
    control("True", fLabel), control("Predicted", fPred), control("Result", fCorrect),
    control("Confidence", confMin), h("span", "xw-control-name", {}, ["to"]), confMax,
    control("Cluster", fCluster), h("label", "xw-control", {}, [onlySel, onlyText]),
    control("Sort", fSort), control("Map", fMethod), control("Colours", fColormap),
    control("Opacity", opacity), h("label", "xw-control", {}, [absolute, h("span", "xw-control-name", {}, ["|v|"])]),
    count,
  ]);
  const inner = h("div", "xw-grid-inner");
  const grid = h("div", "xw-grid", { role: "grid", "aria-label": "explanations", tabindex: 0 }, [inner]);

  const sprayClass = sel("xw-spray-class", "class for SpRAy");
  const sprayRun = h("button", "xw-spray-run", { type: "button" }, ["Run SpRAy"]);
  const sprayState = h("div", "xw-spray-state", { "aria-live": "polite" });
  const colourBy = sel("xw-colour-by", "colour points by");
  const space = sel("xw-spray-space", "what SpRAy clusters");
  const scatter = h("canvas", "xw-scatter", { width: SCATTER, height: SCATTER, role: "img", "aria-label": "SpRAy embedding" });
  const eigen = h("canvas", "xw-eigen", { width: SCATTER, height: 90, role: "img", "aria-label": "eigenvalues" });
  const means = h("div", "xw-means");
  const clearBrush = h("button", "xw-clear-brush", { type: "button" }, ["Clear selection"]);
  const side = h("div", "xw-ex-side xw-spray", {}, [
    h("div", "xw-section-title", {}, ["SpRAy (spectral relevance analysis)"]),
    h("div", "xw-spray-head", {}, [control("Class", sprayClass), control("On", space), sprayRun, control("Colour", colourBy)]),
    sprayState, scatter, clearBrush, eigen, means,
  ]);

  const drillTitle = h("span", "xw-drill-title");
  const drillClose = h("button", "xw-drill-close", { type: "button" }, ["Close"]);
  const drillNote = h("div", "xw-drill-note");
  const drillError = h("div", "xw-error xw-drill-error");
  const drillHost = h("div", "xw-drill-host");
  const drill = h("div", "xw-drill", { role: "region", "aria-label": "drill down" }, [
    h("div", "xw-drill-head", {}, [drillTitle, drillClose]), drillNote, drillError, drillHost,
  ]);
  drill.hidden = true;

  const root = h("div", "xw-widget xw-explorer", {}, [
    h("div", "xw-ex-top", {}, [title, job.el]),
    message,
    h("div", "xw-ex-body", {}, [h("div", "xw-ex-main", {}, [filters, grid]), side]),
    drill,
  ]);
  job.mark(root);
  el.append(root);
  const tooltip = createTooltip(root);

  for (const [v, t] of [["any", "any"], ["correct", "correct"], ["wrong", "wrong"]]) fCorrect.append(h("option", "", { value: v }, [t]));
  for (const [v, t] of [["index", "dataset order"], ["conf_asc", "confidence ↑"], ["conf_desc", "confidence ↓"],
    ["loss_desc", "loss ↓"], ["stat_desc", "relevance outside centre ↓"], ["cluster", "cluster"]]) {
    fSort.append(h("option", "", { value: v }, [t]));
  }
  for (const [v, t] of [["cluster", "cluster"], ["correct", "correct / wrong"], ["conf", "confidence"]]) colourBy.append(h("option", "", { value: v }, [t]));
  for (const [v, t] of [["maps", "maps"], ["activations", "activations"]]) space.append(h("option", "", { value: v }, [t]));
  for (const name of ["auto", "diverging", "viridis", "inferno", "jet", "gray"]) fColormap.append(h("option", "", { value: name }, [name]));

  // --- state ------------------------------------------------------------------------------------
  let meta: Meta = decodeMeta(model.get("meta"));
  let rowOf = rowLookup(meta);
  let clusters: Int16Array = new Int16Array(meta.n).fill(-1);
  let order: Int32Array = new Int32Array(0);
  const f: Filters = { ...DEFAULT_FILTERS };
  const cache = new Map<number, Pixels>(); // dataset index -> pixels of the current method
  const pending = new Set<number>();
  let inflight = 0;
  let cacheMethod = "";
  const tiles = new Map<number, HTMLElement>(); // position -> tile element
  const spare: HTMLElement[] = [];
  const requested: number[][] = []; // every page request's indices (tests, benchmark)
  (el as unknown as { xwExplorer: unknown }).xwExplorer = { requested, order: () => order, cache };
  const display = (): DisplayTraits => ({
    colormap: model.get("colormap"), opacity: model.get("opacity"), absolute: model.get("absolute"),
    clip_percentile: model.get("clip_percentile"), alpha: model.get("alpha"),
  });
  const classes = (): string[] => model.get("classes") ?? [];
  const className = (c: number): string => (c < 0 ? "—" : classes()[c] ?? `class ${c}`);
  const selection = (): Set<number> => new Set(model.get("selection") ?? []);

  // --- the preview (HTML export): pixels inline, no kernel --------------------------------------
  function loadPreview(): boolean {
    const p = model.get("preview") as Record<string, unknown> | undefined;
    if (!p || !Array.isArray(p.indices) || !isArrayDict(p.maps)) return false;
    const maps = p.maps as ArrayDict;
    const images = isArrayDict(p.images) ? (p.images as ArrayDict) : undefined;
    const header = { type: "page", indices: p.indices as number[], method: String(p.method), ranges: p.ranges as number[],
      maps: { dtype: maps.dtype, shape: maps.shape }, images: images ? { dtype: images.dtype, shape: images.shape } : undefined };
    for (const [k, v] of decodePage(header, images ? [maps.data, images.data] : [maps.data])) cache.set(k, v);
    cacheMethod = String(p.method);
    return true;
  }
  const isPreview = loadPreview();

  // --- options of the selects -------------------------------------------------------------------
  function fillSelect(select: HTMLSelectElement, options: [string, string][]): void {
    const keep = select.value;
    select.replaceChildren(...options.map(([v, t]) => h("option", "", { value: v }, [t])));
    if (options.some(([v]) => v === keep)) select.value = keep;
  }

  function renderOptions(): void {
    const names = classes();
    const byLabel = countBy(meta, clusters, f, "label", (r) => meta.label[r]);
    const byPred = countBy(meta, clusters, f, "pred", (r) => meta.pred[r]);
    const byCorrect = countBy(meta, clusters, f, "correct", (r) => meta.correct[r]);
    const byCluster = countBy(meta, clusters, f, "cluster", (r) => clusters[r]);
    const classOpts = (counts: Map<number, number>): [string, string][] =>
      [["-1", "any"], ...names.map((n, c): [string, string] => [String(c), `${n} (${counts.get(c) ?? 0})`])];
    fillSelect(fLabel, classOpts(byLabel));
    fillSelect(fPred, classOpts(byPred));
    const ok = byCorrect.get(1) ?? 0, bad = byCorrect.get(0) ?? 0;
    fillSelect(fCorrect, [["any", `any (${ok + bad})`], ["correct", `correct (${ok})`], ["wrong", `wrong (${bad})`]]);
    const k = Number((model.get("spray") ?? {}).n_clusters ?? 0);
    fillSelect(fCluster, [["-1", "any"], ...Array.from({ length: k }, (_, c): [string, string] => [String(c), `c${c} (${byCluster.get(c) ?? 0})`])]);
    fCluster.disabled = k === 0;
    const predCounts = countBy(meta, clusters, { ...DEFAULT_FILTERS }, "", (r) => meta.pred[r]);
    fillSelect(sprayClass, names.map((n, c): [string, string] => [String(c), `${n} (${predCounts.get(c) ?? 0} predicted)`]));
    fillSelect(fMethod, (model.get("methods") ?? []).map((m): [string, string] => [m, m]));
    fMethod.value = model.get("method");
    fColormap.value = model.get("colormap");
    opacity.value = String(model.get("opacity"));
    absolute.checked = Boolean(model.get("absolute"));
    const nSel = (model.get("selection") ?? []).length;
    onlyText.textContent = `selection only (${nSel})`;
    onlySel.disabled = nSel === 0;
    if (nSel === 0) onlySel.checked = false;
  }

  function readFilters(): void {
    f.label = Number(fLabel.value || -1);
    f.pred = Number(fPred.value || -1);
    f.correct = (fCorrect.value || "any") as Filters["correct"];
    f.confMin = Number.isFinite(Number(confMin.value)) ? Number(confMin.value) : 0;
    f.confMax = confMax.value === "" ? 1 : Number(confMax.value);
    f.cluster = Number(fCluster.value || -1);
    f.sort = (fSort.value || "index") as SortKey;
    f.only = onlySel.checked ? selection() : null;
  }

  function refilter(): void {
    readFilters();
    order = filterRows(meta, clusters, f);
    count.textContent = `${order.length.toLocaleString("en-US")} of ${meta.n.toLocaleString("en-US")} items`;
    renderOptions();
    for (const t of tiles.values()) {
      t.dataset.pos = "";
      spare.push(t);
      t.hidden = true;
    }
    tiles.clear();
    renderGrid();
  }

  // --- the virtual grid -------------------------------------------------------------------------
  function tileFor(pos: number): HTMLElement {
    let t = spare.pop();
    if (!t) {
      t = h("div", "xw-etile", { role: "gridcell", tabindex: 0 }, [
        h("canvas", "xw-etile-canvas", { width: 64, height: 64 }),
        h("div", "xw-etile-label"), h("div", "xw-etile-pred"), h("div", "xw-etile-conf"),
      ]);
      inner.append(t);
    }
    t.hidden = false;
    tiles.set(pos, t);
    return t;
  }

  function fillTile(t: HTMLElement, pos: number, columns: number, sel: Set<number>): void {
    const r = order[pos];
    const index = meta.index[r];
    t.style.transform = `translate(${(pos % columns) * TILE_W}px, ${Math.floor(pos / columns) * ROW_H}px)`;
    const changed = t.dataset.index !== String(index);
    t.dataset.index = String(index);
    t.dataset.pos = String(pos);
    t.classList.toggle("xw-selected", sel.has(index));
    const [canvas, label, pred, conf] = Array.from(t.children) as HTMLElement[];
    if (changed) {
      label.textContent = `#${index} · ${className(meta.label[r])}`;
      const wrong = meta.label[r] >= 0 && !meta.correct[r];
      pred.textContent = `→ ${className(meta.pred[r])}`;
      pred.classList.toggle("xw-wrong", wrong);
      conf.textContent = `${formatPercent(meta.conf[r])}${Number.isFinite(meta.loss[r]) ? ` · loss ${meta.loss[r].toFixed(2)}` : ""}`;
      t.title = `item ${index}: true ${className(meta.label[r])}, predicted ${className(meta.pred[r])}; click to open in the dashboard`;
      (canvas as HTMLCanvasElement).dataset.loaded = "false";
    }
    const px = cache.get(index);
    if (px && (changed || canvas.dataset.loaded !== "true")) {
      drawPixels(canvas as HTMLCanvasElement, px, display());
      canvas.dataset.loaded = "true";
    } else if (!px && changed) {
      (canvas as HTMLCanvasElement).getContext("2d")?.clearRect(0, 0, 64, 64);
    }
  }

  let lastRange = { first: 0, last: 0, columns: 1 };
  function renderGrid(): void {
    const range = gridRange(order.length, grid.clientWidth || 600, grid.scrollTop, grid.clientHeight || 460, TILE_W, ROW_H);
    lastRange = range;
    inner.style.height = `${range.height}px`;
    for (const [pos, t] of tiles) {
      if (pos < range.first || pos >= range.last) {
        tiles.delete(pos);
        t.hidden = true;
        spare.push(t);
      }
    }
    const sel = selection();
    for (let pos = range.first; pos < range.last; pos++) fillTile(tiles.get(pos) ?? tileFor(pos), pos, range.columns, sel);
    requestVisible();
  }

  function redrawTiles(): void {
    for (const t of tiles.values()) {
      const c = t.firstElementChild as HTMLCanvasElement;
      c.dataset.loaded = "false";
      fillTile(t, Number(t.dataset.pos), lastRange.columns, selection());
    }
  }

  function requestVisible(): void {
    if (isPreview || inflight >= MAX_INFLIGHT) return;
    const method = model.get("method");
    if (cacheMethod !== method) {
      cache.clear();
      cacheMethod = method;
    }
    const want: number[] = [];
    for (let pos = lastRange.first; pos < lastRange.last && want.length < MAX_PAGE; pos++) {
      const index = meta.index[order[pos]];
      if (!cache.has(index) && !pending.has(index)) want.push(index);
    }
    if (!want.length) return;
    for (const i of want) pending.add(i);
    inflight += 1;
    requested.push(want);
    const req = requests.send("page", { indices: want, method });
    void req.done.then((msg) => {
      inflight -= 1;
      for (const i of want) pending.delete(i);
      if (msg.status === "error") {
        message.textContent = String(msg.error ?? "the kernel could not send these tiles");
        return;
      }
      requestVisible();
    });
  }

  function onPage(msg: PageHeader, buffers: Bytes[]): void {
    if (msg.method !== cacheMethod) return;
    for (const [index, px] of decodePage(msg, buffers)) cache.set(index, px);
    while (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as number);
    for (const t of tiles.values()) {
      if (t.firstElementChild && (t.firstElementChild as HTMLElement).dataset.loaded !== "true") {
        fillTile(t, Number(t.dataset.pos), lastRange.columns, selection());
      }
    }
    if (hoverIndex >= 0 && cache.has(hoverIndex)) showHover();
  }

  let frame = 0;
  const onScroll = (): void => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      renderGrid();
    });
  };
  grid.addEventListener("scroll", onScroll);

  const onGridClick = (ev: MouseEvent): void => {
    const t = (ev.target as Element).closest<HTMLElement>(".xw-etile");
    if (!t || !t.dataset.index) return;
    const index = Number(t.dataset.index);
    if (ev.shiftKey) {
      const s = selection();
      if (s.has(index)) s.delete(index);
      else s.add(index);
      setSelection([...s]);
      return;
    }
    openItem(index);
  };
  grid.addEventListener("click", onGridClick);
  const onGridKey = (ev: KeyboardEvent): void => {
    const t = (ev.target as Element).closest<HTMLElement>(".xw-etile");
    if (!t || !t.dataset.index || (ev.key !== "Enter" && ev.key !== " ")) return;
    ev.preventDefault();
    openItem(Number(t.dataset.index));
  };
  grid.addEventListener("keydown", onGridKey);

  function setSelection(indices: number[]): void {
    model.set("selection", [...indices].sort((a, b) => a - b));
    model.save_changes();
  }

  // --- drill down -------------------------------------------------------------------------------
  let drillCleanup: (() => void) | null = null;
  let drillShown = "";
  function openItem(index: number): void {
    drill.hidden = false;
    drill.dataset.index = String(index);
    drillTitle.textContent = `Item #${index}`;
    drillError.textContent = "";
    drillNote.textContent = model.get("has_model") ? "opening in the dashboard…" : "";
    if (!model.get("has_model")) {
      drillError.textContent = "No model: this explorer was opened from a store without the model. Pass model= (and data=) to xw.explore to open an item in the dashboard.";
    }
    const req = requests.send("drill", { index });
    void req.done.then((msg) => {
      if (msg.status === "error") {
        drillError.textContent = String(msg.error ?? "could not open the item");
        drillNote.textContent = "";
      }
    });
  }

  function closeDrillView(): void {
    if (drillCleanup) drillCleanup();
    drillCleanup = null;
    drillShown = "";
    drillHost.replaceChildren();
  }

  function renderDrill(): void {
    const d = model.get("drill") ?? {};
    if (d.index === undefined) {
      closeDrillView();
      if (!drillError.textContent) drill.hidden = true;
      return;
    }
    drill.hidden = false;
    drill.dataset.index = String(d.index);
    drillTitle.textContent = `Item #${d.index}`;
    drillError.textContent = d.error ?? "";
    const id = d.model_id ?? "";
    if (!id || id === drillShown) return;
    closeDrillView();
    drillShown = id;
    const manager = (model as unknown as { widget_manager?: { get_model(id: string): Promise<unknown> } }).widget_manager;
    if (!manager) {
      drillNote.textContent = "This host cannot show a widget inside another: display explorer.dashboard in a cell.";
      return;
    }
    drillNote.textContent = "";
    void manager.get_model(id).then((child) => {
      if (drillShown !== id) return;
      const out = dashboardView.render({ model: child as AnyModel<never>, el: drillHost });
      drillCleanup = typeof out === "function" ? out : null;
    }, (err: unknown) => {
      drillNote.textContent = `the dashboard could not be shown here (${String(err)}): display explorer.dashboard in a cell`;
    });
  }

  const onDrillClose = (): void => {
    drillError.textContent = "";
    closeDrillView();
    drill.hidden = true;
    requests.send("drill", { index: -1 });
  };
  drillClose.addEventListener("click", onDrillClose);

  // --- SpRAy: scatter, eigenvalues, cluster means -----------------------------------------------
  let points: Float32Array = new Float32Array(0); // scatter pixel coordinates
  let pointIndex: Int32Array = new Int32Array(0); // dataset index of each point
  let pointCluster: Int16Array = new Int16Array(0);
  let brush: [number, number, number, number] | null = null;
  let hoverIndex = -1;

  function decodeSpray(): void {
    const s = model.get("spray") ?? {};
    sprayState.textContent = s.state === "running" ? `running SpRAy on ${className(Number(s.cls))}…`
      : s.state === "error" ? "" : s.state === "done"
        ? `${className(Number(s.cls))}, ${s.space === "activations" ? "activations" : `${String(s.method)} maps`}: ${s.n_clusters} clusters (eigengap), ${(s.sizes as number[]).join(" / ")} items`
        : "Pick a class and run SpRAy to cluster its maps.";
    if (s.state === "error") message.textContent = `SpRAy: ${String(s.error)}`;
    if (s.state === "done" && typeof s.cls === "number") sprayClass.value = String(s.cls);
    const ok = s.state === "done" && isArrayDict(s.embedding) && isArrayDict(s.indices) && isArrayDict(s.labels);
    if (!ok) {
      points = new Float32Array(0);
      pointIndex = new Int32Array(0);
      pointCluster = new Int16Array(0);
      clusters = new Int16Array(meta.n).fill(-1);
    } else {
      pointIndex = decodeArray(s.indices as ArrayDict).data as Int32Array;
      pointCluster = decodeArray(s.labels as ArrayDict).data as Int16Array;
      points = projectPoints(decodeArray(s.embedding as ArrayDict).data as Float32Array, SCATTER);
      clusters = clusterOfRows(meta, pointIndex, pointCluster);
    }
    groupsKey = "";
    drawScatter();
    drawEigen(s);
    drawMeans(s);
  }

  function pointColour(i: number, mode: string, lut: Uint8Array): string {
    const r = rowOf.get(pointIndex[i]);
    if (mode === "correct") return r === undefined ? "#999999" : meta.correct[r] ? "#2e7d32" : "#d32f2f";
    if (mode === "conf") {
      const q = r === undefined ? 0 : Math.round(Math.max(0, Math.min(1, meta.conf[r])) * 255) * 3;
      return `rgb(${lut[q]}, ${lut[q + 1]}, ${lut[q + 2]})`;
    }
    return clusterColour(pointCluster[i]);
  }

  // Points grouped by colour (rebuilt when the result, the metadata or the colouring changes), so a redraw
  // while brushing sets each fill style once and fills one path per colour.
  let groups: { key: string; colour: string; points: number[] }[] = [];
  let groupsKey = "";
  function pointGroups(): typeof groups {
    const mode = colourBy.value || "cluster";
    const key = `${mode}|${points.length}|${meta.n}|${String(model.get("spray")?.cls)}`;
    if (key === groupsKey) return groups;
    groupsKey = key;
    const lut = getLUT("viridis");
    const byColour = new Map<string, number[]>();
    for (let i = 0; i < points.length / 2; i++) {
      const c = pointColour(i, mode, lut);
      let list = byColour.get(c);
      if (!list) byColour.set(c, (list = []));
      list.push(i);
    }
    groups = Array.from(byColour, ([colour, list]) => ({ key: colour, colour, points: list }));
    return groups;
  }

  function drawScatter(): void {
    const ctx = scatter.getContext("2d");
    if (!ctx) return;
    ctx.clearRect(0, 0, SCATTER, SCATTER);
    const sel = brush ? null : selection();
    const fade = sel !== null && sel.size > 0;
    for (const g of pointGroups()) {
      ctx.fillStyle = g.colour;
      for (const pass of fade ? [false, true] : [true]) {
        ctx.globalAlpha = pass ? 0.85 : 0.25;
        ctx.beginPath();
        for (const i of g.points) {
          if (fade && sel!.has(pointIndex[i]) !== pass) continue;
          ctx.rect(points[2 * i] - 2, points[2 * i + 1] - 2, 4, 4);
        }
        ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
    if (brush) {
      ctx.strokeStyle = getComputedStyle(root).getPropertyValue("--xw-accent").trim() || "#1976d2";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(Math.min(brush[0], brush[2]), Math.min(brush[1], brush[3]), Math.abs(brush[2] - brush[0]), Math.abs(brush[3] - brush[1]));
    }
  }

  function drawEigen(s: Record<string, unknown>): void {
    const ctx = eigen.getContext("2d");
    if (!ctx) return;
    ctx.clearRect(0, 0, SCATTER, 90);
    eigen.hidden = !isArrayDict(s.eigenvalues);
    if (eigen.hidden) return;
    const vals = Array.from(decodeArray(s.eigenvalues as ArrayDict).data as Float32Array);
    const k = Number(s.n_clusters ?? s.eigengap ?? 1);
    eigen.dataset.gap = String(k);
    const style = getComputedStyle(root);
    const fg = style.getPropertyValue("--xw-fg").trim() || "#222";
    const mark = style.getPropertyValue("--xw-mark").trim() || "#b3261e";
    const top = Math.max(1e-9, ...vals);
    const x = (i: number): number => 24 + (i * (SCATTER - 34)) / Math.max(1, vals.length - 1);
    const y = (v: number): number => 74 - (v / top) * 62;
    ctx.fillStyle = fg;
    ctx.font = "10px sans-serif";
    ctx.fillText("eigenvalues", 26, 10);
    ctx.strokeStyle = mark;
    ctx.setLineDash([3, 3]);
    const gx = (x(k - 1) + x(k)) / 2;
    ctx.beginPath();
    ctx.moveTo(gx, 12);
    ctx.lineTo(gx, 78);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = mark;
    ctx.fillText(`gap → k=${k}`, Math.min(gx + 3, SCATTER - 60), 22);
    ctx.fillStyle = fg;
    vals.forEach((v, i) => ctx.fillRect(x(i) - 2, y(v) - 2, 4, 4));
    ctx.fillText("1", x(0) - 3, 88);
    ctx.fillText(String(vals.length), x(vals.length - 1) - 6, 88);
  }

  function drawMeans(s: Record<string, unknown>): void {
    means.replaceChildren();
    if (!isArrayDict(s.means) || !isArrayDict(s.mean_ranges)) return;
    const m = decodeArray(s.means as ArrayDict);
    const ranges = decodeArray(s.mean_ranges as ArrayDict).data as Float32Array;
    const [k, mh, mw] = m.shape;
    const sizes = (s.sizes as number[]) ?? [];
    for (let c = 0; c < k; c++) {
      const canvas = h("canvas", "", { width: mw, height: mh });
      drawPixels(canvas, { image: null, codes: (m.data as Uint8Array).subarray(c * mh * mw, (c + 1) * mh * mw), mapH: mh, mapW: mw,
        vmin: ranges[2 * c], vmax: ranges[2 * c + 1] }, { ...display(), opacity: 1 });
      const b = h("button", `xw-mean${f.cluster === c ? " xw-on" : ""}`, { type: "button", "data-cluster": c, title: `mean map of cluster ${c}; click to filter the grid` }, [
        canvas, h("span", "", {}, [h("span", "xw-swatch", { style: `background: ${clusterColour(c)}` }), `c${c} · ${sizes[c] ?? 0}`]),
      ]);
      means.append(b);
    }
  }

  const onMeans = (ev: MouseEvent): void => {
    const b = (ev.target as Element).closest<HTMLElement>(".xw-mean");
    if (!b) return;
    const c = Number(b.dataset.cluster);
    fCluster.value = f.cluster === c ? "-1" : String(c);
    refilter();
    drawMeans(model.get("spray") ?? {});
  };
  means.addEventListener("click", onMeans);

  const canvasPoint = (ev: MouseEvent): [number, number] => {
    const r = scatter.getBoundingClientRect();
    return [((ev.clientX - r.left) * SCATTER) / (r.width || SCATTER), ((ev.clientY - r.top) * SCATTER) / (r.height || SCATTER)];
  };
  let dragging = false;
  const onDown = (ev: MouseEvent): void => {
    if (!points.length) return;
    const [x, y] = canvasPoint(ev);
    brush = [x, y, x, y];
    dragging = true;
    tooltip.hide();
  };
  const onMove = (ev: MouseEvent): void => {
    const [x, y] = canvasPoint(ev);
    if (dragging && brush) {
      brush[2] = x;
      brush[3] = y;
      drawScatter();
      return;
    }
    const i = nearestPoint(points, x, y);
    hoverIndex = i >= 0 ? pointIndex[i] : -1;
    hoverAt = { x: ev.clientX, y: ev.clientY };
    if (hoverIndex < 0) {
      tooltip.hide();
      return;
    }
    if (!cache.has(hoverIndex) && !pending.has(hoverIndex) && !isPreview) {
      pending.add(hoverIndex);
      const want = [hoverIndex];
      void requests.send("page", { indices: want, method: model.get("method") }).done.then(() => pending.delete(want[0]));
    }
    showHover();
  };
  let hoverAt = { x: 0, y: 0 };
  function showHover(): void {
    const r = rowOf.get(hoverIndex);
    if (r === undefined) return;
    tooltip.show([`#${hoverIndex} · ${className(meta.label[r])} → ${className(meta.pred[r])} (${formatPercent(meta.conf[r])})`,
      `cluster c${clusters[r]}`], hoverAt);
    const px = cache.get(hoverIndex);
    if (px) {
      const c = h("canvas", "xw-hover-thumb", { width: 64, height: 64 });
      drawPixels(c, px, display());
      tooltip.el.append(c);
    }
  }
  const onUp = (): void => {
    if (!dragging || !brush) return;
    dragging = false;
    const inside = pointsInRect(points, brush[0], brush[1], brush[2], brush[3]);
    const tiny = Math.abs(brush[2] - brush[0]) < 3 && Math.abs(brush[3] - brush[1]) < 3;
    brush = null;
    if (tiny) {
      drawScatter();
      return;
    }
    setSelection(inside.map((i) => pointIndex[i]));
    onlySel.checked = inside.length > 0;
    refilter();
    drawScatter();
  };
  const onLeave = (): void => {
    hoverIndex = -1;
    tooltip.hide();
  };
  scatter.addEventListener("mousedown", onDown);
  scatter.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  scatter.addEventListener("mouseleave", onLeave);

  const onSprayRun = (): void => {
    message.textContent = "";
    const req = requests.send("spray", { cls: Number(sprayClass.value), method: model.get("method"), space: space.value || "maps" });
    sprayState.textContent = "asking the kernel…";
    void req.done.then((msg) => {
      if (msg.status === "error") message.textContent = `SpRAy: ${String(msg.error ?? "failed")}`;
    });
  };
  sprayRun.addEventListener("click", onSprayRun);
  const onClearBrush = (): void => {
    setSelection([]);
    onlySel.checked = false;
    refilter();
    drawScatter();
  };
  clearBrush.addEventListener("click", onClearBrush);

  // --- job: progress, status, cancel (lib/status.ts reads the traits) ---------------------------
  const renderJob = (): void => job.render();

  // --- wiring -----------------------------------------------------------------------------------
  const onMessage = (msg: KernelMessage, buffers: Bytes[] = []): void => {
    if (msg && msg.type === "page") onPage(msg as PageHeader, buffers);
  };
  model.on("msg:custom", onMessage);

  const writeTrait = <K extends keyof ExplorerTraits & string>(key: K, value: ExplorerTraits[K]): void => {
    model.set(key, value);
    model.save_changes();
  };
  const onFilter = (): void => refilter();
  for (const c of [fLabel, fPred, fCorrect, fCluster, fSort, onlySel, confMin, confMax]) c.addEventListener("change", onFilter);
  const onMethod = (): void => writeTrait("method", fMethod.value);
  const onColormap = (): void => writeTrait("colormap", fColormap.value);
  const onOpacity = (): void => writeTrait("opacity", Number(opacity.value));
  const onAbsolute = (): void => writeTrait("absolute", absolute.checked);
  const onColourBy = (): void => drawScatter();
  fMethod.addEventListener("change", onMethod);
  fColormap.addEventListener("change", onColormap);
  opacity.addEventListener("input", onOpacity);
  absolute.addEventListener("change", onAbsolute);
  colourBy.addEventListener("change", onColourBy);

  const onMeta = (): void => {
    meta = decodeMeta(model.get("meta"));
    rowOf = rowLookup(meta);
    decodeSpray();
    refilter();
    renderJob();
  };
  const onMessageTrait = (): void => {
    message.textContent = model.get("message") ?? "";
  };
  const onTitle = (): void => {
    title.textContent = model.get("title") || "Dataset explorer";
  };
  const onSelection = (): void => {
    renderOptions();
    if (onlySel.checked) refilter();
    else renderGrid();
    drawScatter();
  };
  const onSpray = (): void => {
    decodeSpray();
    refilter();
  };
  const onDisplay = (): void => {
    renderOptions();
    redrawTiles();
    drawMeans(model.get("spray") ?? {});
  };
  const onMethodTrait = (): void => {
    renderOptions();
    cache.clear();
    pending.clear();
    redrawTiles();
    requestVisible();
  };
  const listeners: [string, () => void][] = [
    ["change:meta", onMeta], ["change:classes", onMeta], ["change:message", onMessageTrait], ["change:title", onTitle],
    ["change:selection", onSelection], ["change:spray", onSpray], ["change:drill", renderDrill],
    ["change:method", onMethodTrait], ["change:methods", renderOptions],
    ["change:colormap", onDisplay], ["change:opacity", onDisplay], ["change:absolute", onDisplay], ["change:clip_percentile", onDisplay],
  ];
  for (const [ev, cb] of listeners) model.on(ev, cb);
  const resize = typeof ResizeObserver === "function" ? new ResizeObserver(() => renderGrid()) : null;
  resize?.observe(grid);

  onTitle();
  onMessageTrait();
  decodeSpray();
  refilter();
  renderJob();
  renderDrill();

  return () => {
    for (const [ev, cb] of listeners) model.off(ev, cb);
    job.destroy();
    model.off("msg:custom", onMessage);
    requests.dispose();
    resize?.disconnect();
    if (frame) cancelAnimationFrame(frame);
    window.removeEventListener("mouseup", onUp);
    closeDrillView();
    root.remove();
    extra.remove();
  };
}

export default { render };
