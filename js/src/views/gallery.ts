// FeatureGallery: a grid of visualised channels; a click opens the channel's optimisation scrubber and
// its top activating patches side by side; an activation-grid tab, a dissection tab and a concepts tab
// (ACE; docs/widget-protocol.md, "FeatureGallery").
//
// Selectors (stable, used by tests):
//   .xw-gallery                      root; data-tab = features | activations | dissection | concepts,
//                                    data-status = idle | running | done | cancelled | error, data-selected = channel or -1
//   .xw-title  .xw-progress[role=progressbar]  .xw-status  button.xw-cancel (sends {type: "cancel", id})
//   button.xw-tab[data-tab]          tab switch (writes the `tab` trait); aria-selected on the active one
//   .xw-tile[data-channel][data-index]   one per channel: canvas.xw-tile-canvas, .xw-tile-label, .xw-tile-metric
//                                        ("obj " + .xw-tile-value: the objective reached);
//                                    .xw-selected on the open one; click sends {type: "select", id, channel}
//   .xw-detail[data-channel]         the open channel (hidden when none):
//     canvas.xw-gallery-frame        the snapshot at the scrubbed step; data-step on .xw-detail
//     input.xw-gallery-slider  button.xw-play  .xw-frame-label ("step 64 / 256")
//     .xw-lineplot                   objective per step (polyline.xw-series-objective) with the frame's marker
//     .xw-patches > .xw-patch[data-image]  canvas.xw-patch-canvas + .xw-patch-value; click shows that image's
//                                    activations
//   .xw-activations                  canvas.xw-act-image, canvas.xw-thumb[data-index] (picker),
//                                    canvas.xw-actgrid (one cell per channel; click selects a gallery channel),
//                                    .xw-act-info (hovered channel)
//   table.xw-dissection              tr[data-unit] rows sorted by best IoU; td.xw-iou cells; .xw-in-gallery rows
//                                    are clickable (select that channel)
//   .xw-concepts > .xw-concept-card[data-concept][data-significant]  one per ACE concept, in rank order:
//                                    .xw-concept-head (TCAV score, p-value), canvas.xw-concept-patch[data-image];
//                                    .xw-concept-random: the random controls' tests
import { h } from "../lib/dom";
import { formatValue } from "../lib/format";
import { nextFrame, resolveFrame } from "../lib/frames";
import {
  activationLUT, activationValue, cellAt, colourMap, curveIndex, decodeActivations, decodeDetail, decodeNumbers,
  conceptCards, decodeStack, dissectionRows, formatP, gridLayout, isActivations, isConcepts, isDetail, isDissection,
  type Activations, type Detail, type GalleryTraits, type GridLayout,
} from "../lib/gallery";
import type { RGBAImage } from "../lib/image";
import { createLinePlot } from "../lib/lineplot";
import type { RenderProps } from "../lib/model";
import { drawImage } from "../lib/overlay";
import { createRequests } from "../lib/requests";
import { createJobLine, statusText } from "../lib/status";
import { attachViewStyles } from "../lib/styles";

const CSS = `
.xw-gallery { display: inline-flex; flex-direction: column; gap: 10px; max-width: 100%; padding: 10px;
  border: 1px solid var(--xw-border); border-radius: 6px; background: var(--xw-bg); }
.xw-tabs { display: flex; gap: 2px; border-bottom: 1px solid var(--xw-border); }
.xw-tab { font: inherit; padding: 4px 12px; border: 1px solid transparent; border-bottom: none; background: none;
  color: var(--xw-fg2); cursor: pointer; border-radius: 4px 4px 0 0; margin-bottom: -1px; }
.xw-tab[aria-selected="true"] { color: var(--xw-fg); border-color: var(--xw-border); background: var(--xw-bg); font-weight: 600; }
.xw-tab:disabled { opacity: .45; cursor: default; }
.xw-tiles { display: grid; grid-template-columns: repeat(auto-fill, 100px); gap: 8px; max-width: 880px; }
.xw-tile { display: flex; flex-direction: column; gap: 2px; padding: 2px; border: 2px solid transparent; border-radius: 5px;
  cursor: pointer; background: none; font: inherit; color: inherit; text-align: left; }
.xw-tile:hover { background: var(--xw-bg2); }
.xw-tile:focus-visible { outline: 2px solid var(--xw-accent); outline-offset: 1px; }
.xw-tile.xw-selected { border-color: var(--xw-accent); }
.xw-tile.xw-requested { opacity: .6; }
.xw-tile-canvas { width: 92px; height: 92px; border-radius: 3px; display: block; background: var(--xw-bg2); }
.xw-tile-text { display: flex; justify-content: space-between; font-size: 11px; }
.xw-tile-value { color: var(--xw-fg2); font-variant-numeric: tabular-nums; }
.xw-tile-metric-name { color: var(--xw-fg2); font-size: 10px; }
.xw-detail { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; padding-top: 8px; border-top: 1px solid var(--xw-border); }
.xw-detail-col { display: flex; flex-direction: column; gap: 6px; }
.xw-gallery-frame { width: 224px; height: 224px; border-radius: 3px; display: block; background: var(--xw-bg2); }
.xw-scrub-bar { display: flex; align-items: center; gap: 6px; font-size: 12px; }
.xw-gallery-slider { flex: 1; min-width: 120px; accent-color: var(--xw-accent); }
.xw-gallery .xw-frame-label { min-width: 8.5em; font-variant-numeric: tabular-nums; color: var(--xw-fg2); }
.xw-gallery .xw-play, .xw-gallery .xw-cancel { font: inherit; font-size: 12px; padding: 1px 10px; border: 1px solid var(--xw-border);
  border-radius: 4px; background: var(--xw-bg2); color: inherit; cursor: pointer; }
.xw-gallery .xw-cancel:disabled { opacity: .45; cursor: default; }
.xw-lineplot svg { display: block; overflow: visible; font-size: 9px; }
.xw-lineplot-frame { fill: none; stroke: var(--xw-border); }
.xw-lineplot-line { fill: none; stroke-width: 1.6; }
.xw-series-objective { stroke: var(--xw-accent); }
.xw-lineplot-tick, .xw-lineplot-axis, .xw-lineplot-label { fill: var(--xw-fg2); }
.xw-lineplot-marker { fill: var(--xw-mark); stroke: var(--xw-bg); stroke-width: 1; }
.xw-lineplot-cursor { stroke: var(--xw-fg2); stroke-width: .6; }
.xw-patches { display: grid; grid-template-columns: repeat(3, 96px); gap: 6px; }
.xw-patch { display: flex; flex-direction: column; gap: 1px; cursor: pointer; }
.xw-patch-canvas { width: 96px; height: 96px; border-radius: 3px; display: block; background: var(--xw-bg2); image-rendering: auto; }
.xw-patch-value { font-size: 11px; color: var(--xw-fg2); font-variant-numeric: tabular-nums; }
.xw-note { font-size: 12px; color: var(--xw-fg2); max-width: 300px; }
.xw-note.xw-wide { max-width: 640px; margin-bottom: 6px; }
.xw-activations { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.xw-act-image { width: 192px; border-radius: 3px; display: block; }
.xw-thumbs { display: grid; grid-template-columns: repeat(4, 44px); gap: 4px; }
.xw-thumb { width: 44px; height: 44px; border-radius: 3px; cursor: pointer; border: 2px solid transparent; display: block; }
.xw-thumb.xw-selected { border-color: var(--xw-accent); }
.xw-actgrid { display: block; max-width: 100%; image-rendering: pixelated; cursor: crosshair; }
.xw-act-info { font-size: 12px; color: var(--xw-fg2); min-height: 1.4em; font-variant-numeric: tabular-nums; }
.xw-dissection-wrap { max-height: 380px; overflow: auto; border: 1px solid var(--xw-border); border-radius: 4px; }
table.xw-dissection { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
.xw-dissection th { position: sticky; top: 0; background: var(--xw-bg2); font-weight: 600; text-align: right; padding: 3px 8px; }
.xw-dissection td { text-align: right; padding: 2px 8px; border-top: 1px solid var(--xw-border); }
.xw-dissection td.xw-concept, .xw-dissection th.xw-concept { text-align: left; }
.xw-dissection tr.xw-in-gallery { cursor: pointer; }
.xw-dissection tr.xw-in-gallery td:first-child { color: var(--xw-accent); font-weight: 600; }
.xw-dissection tr.xw-selected td { outline: 1px solid var(--xw-accent); }
.xw-concepts { display: flex; flex-direction: column; gap: 8px; max-height: 460px; overflow: auto; }
.xw-concept-card { border: 1px solid var(--xw-border); border-radius: 4px; padding: 6px; }
.xw-concept-card[data-significant="false"] { opacity: .6; }
.xw-concept-head { font-size: 12px; margin-bottom: 4px; font-variant-numeric: tabular-nums; }
.xw-concept-patches { display: flex; gap: 3px; flex-wrap: wrap; }
.xw-concept-patch { width: 56px; height: 56px; image-rendering: pixelated; border-radius: 2px; }
`;

const FPS = 8;

type TabName = "features" | "activations" | "dissection" | "concepts";
const TABS: TabName[] = ["features", "activations", "dissection", "concepts"];

function canvasOf(image: RGBAImage, className: string, label: string): HTMLCanvasElement {
  const c = h("canvas", className, { role: "img", "aria-label": label });
  drawImage(c, image);
  return c;
}

function render({ model, el }: RenderProps<GalleryTraits>): () => void {
  const extra = attachViewStyles(el, CSS);
  const requests = createRequests(model);

  // --- skeleton ---------------------------------------------------------------------------------------
  const title = h("div", "xw-title");
  const job = createJobLine(model, {
    requests,
    traits: ["phase", "step"],
    label: (state) => {
      // while running: the phase, and the optimisation's step
      const phase = String(model.get("phase") ?? "");
      const step = Number(model.get("step")) || 0;
      const total = Number(model.get("n_steps")) || 0;
      if (state.status !== "running" || !phase) return statusText(state);
      return `${phase}${phase === "optimising" && total ? ` · step ${step} / ${total}` : ""}`;
    },
    hidden: (state) => state.status === "idle" || state.status === "done",
  });
  const tabButtons = new Map<TabName, HTMLButtonElement>();
  for (const t of TABS) {
    tabButtons.set(t, h("button", "xw-tab", { type: "button", role: "tab", "data-tab": t }, [t[0].toUpperCase() + t.slice(1)]));
  }
  const tiles = h("div", "xw-tiles", { role: "listbox", "aria-label": "channels" });
  const frameCanvas = h("canvas", "xw-gallery-frame", { role: "img", "aria-label": "optimisation snapshot" });
  const slider = h("input", "xw-gallery-slider", { type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": "optimisation step" });
  const play = h("button", "xw-play", { type: "button", "aria-pressed": "false" }, ["▶ Play"]);
  const frameLabel = h("span", "xw-frame-label");
  const plot = createLinePlot({ width: 260, height: 120, left: 40, right: 10, top: 8, bottom: 24 });
  const detailHead = h("div", "xw-panel-title");
  const patchesHead = h("div", "xw-panel-title", {}, ["Top activating patches"]);
  const patches = h("div", "xw-patches");
  const patchNote = h("div", "xw-note");
  const detail = h("div", "xw-detail", {}, [
    h("div", "xw-detail-col", {}, [detailHead, frameCanvas, h("div", "xw-scrub-bar", {}, [play, slider]), frameLabel]),
    h("div", "xw-detail-col", {}, [h("div", "xw-panel-title", {}, ["Objective per step"]), plot.el]),
    h("div", "xw-detail-col", {}, [patchesHead, patches, patchNote]),
  ]);
  detail.hidden = true;
  const featuresPane = h("div", "xw-pane", { "data-pane": "features" }, [tiles, detail]);

  const actImage = h("canvas", "xw-act-image", { role: "img", "aria-label": "image" });
  const thumbs = h("div", "xw-thumbs");
  const actGrid = h("canvas", "xw-actgrid", { role: "img", "aria-label": "feature maps" });
  const actInfo = h("div", "xw-act-info");
  const actNote = h("div", "xw-note");
  const activationsPane = h("div", "xw-pane xw-activations", { "data-pane": "activations" }, [
    h("div", "xw-detail-col", {}, [actImage, thumbs, actNote]),
    h("div", "xw-detail-col", {}, [actInfo, actGrid]),
  ]);
  const dissTable = h("table", "xw-dissection");
  const dissNote = h("div", "xw-note xw-wide");
  const dissectionPane = h("div", "xw-pane", { "data-pane": "dissection" }, [
    dissNote, h("div", "xw-dissection-wrap", {}, [dissTable]),
  ]);
  const conceptNote = h("div", "xw-note xw-wide");
  const conceptList = h("div", "xw-concepts");
  const conceptRandom = h("div", "xw-note xw-wide xw-concept-random");
  const conceptsPane = h("div", "xw-pane", { "data-pane": "concepts" }, [conceptNote, conceptList, conceptRandom]);
  const error = h("div", "xw-error");
  const root = h("div", "xw-widget xw-gallery", {}, [
    h("div", "xw-topbar", {}, [title, job.el]),
    h("div", "xw-tabs", { role: "tablist" }, [...tabButtons.values()]),
    featuresPane, activationsPane, dissectionPane, conceptsPane, error,
  ]);
  job.mark(root);
  el.append(root);

  // --- state ----------------------------------------------------------------------------------------
  let tileImages: RGBAImage[] = [];
  let values: number[] = [];
  let current: Detail | null = null;
  let frame = 0;
  let following = true;
  let timer: ReturnType<typeof setInterval> | null = null;
  let acts: Activations | null = null;
  let layout: GridLayout | null = null;
  let pendingTab: TabName | null = null;

  const channels = (): number[] => model.get("channels") ?? [];
  const selectedChannel = (): number => Number(model.get("selected") ?? -1);

  function showError(e: unknown): void {
    error.textContent = e instanceof Error ? e.message : String(e);
  }

  // --- tabs -----------------------------------------------------------------------------------------
  function availableTabs(): Set<TabName> {
    const ok = new Set<TabName>(["features"]);
    if (isActivations(model.get("activations"))) ok.add("activations");
    if (isDissection(model.get("dissection"))) ok.add("dissection");
    if (isConcepts(model.get("concepts"))) ok.add("concepts");
    return ok;
  }

  function renderTab(): void {
    const ok = availableTabs();
    let tab = (model.get("tab") ?? "features") as TabName;
    if (!ok.has(tab)) tab = ok.has("concepts") && !model.get("channels")?.length ? "concepts" : "features";
    for (const [name, button] of tabButtons) {
      button.disabled = !ok.has(name);
      button.setAttribute("aria-selected", String(name === tab));
    }
    featuresPane.hidden = tab !== "features";
    activationsPane.hidden = tab !== "activations";
    dissectionPane.hidden = tab !== "dissection";
    conceptsPane.hidden = tab !== "concepts";
    root.dataset.tab = tab;
  }

  function setTab(tab: TabName): void {
    model.set("tab", tab);
    model.save_changes();
    renderTab();
  }

  // --- tiles ----------------------------------------------------------------------------------------
  function renderTiles(): void {
    try {
      tileImages = decodeStack(model.get("tiles"));
      values = decodeNumbers(model.get("objective"));
    } catch (e) {
      showError(e);
      return;
    }
    const chans = channels();
    const sel = selectedChannel();
    const existing = tiles.children;
    for (let i = 0; i < chans.length; i++) {
      let tile = existing[i] as HTMLElement | undefined;
      if (!tile || tile.dataset.channel !== String(chans[i])) {
        const canvas = h("canvas", "xw-tile-canvas", { role: "img", "aria-label": `channel ${chans[i]}` });
        tile = h("button", "xw-tile", { type: "button", role: "option", "data-channel": chans[i], "data-index": i }, [
          canvas,
          h("div", "xw-tile-text", {}, [
            h("span", "xw-tile-label", {}, [`ch ${chans[i]}`]),
            // the number is the objective the optimised image reaches (the channel's activation)
            h("span", "xw-tile-metric", { title: "objective reached by the optimised image" }, [
              h("span", "xw-tile-metric-name", {}, ["obj "]), h("span", "xw-tile-value"),
            ]),
          ]),
        ]);
        if (existing[i]) existing[i].replaceWith(tile);
        else tiles.append(tile);
      }
      const img = tileImages[i];
      if (img) drawImage(tile.querySelector("canvas")!, img);
      tile.querySelector(".xw-tile-value")!.textContent = values[i] !== undefined ? formatValue(values[i]) : "";
      tile.title = `channel ${chans[i]}${values[i] !== undefined ? ` · objective ${formatValue(values[i])}` : ""}`;
      tile.classList.toggle("xw-selected", chans[i] === sel);
      tile.setAttribute("aria-selected", String(chans[i] === sel));
    }
    while (tiles.children.length > chans.length) tiles.lastElementChild!.remove();
  }

  function select(channel: number): void {
    for (const t of tiles.querySelectorAll<HTMLElement>(".xw-tile")) {
      t.classList.toggle("xw-requested", t.dataset.channel === String(channel));
    }
    const req = requests.send("select", { channel });
    void req.done.then((m) => {
      for (const t of tiles.querySelectorAll(".xw-requested")) t.classList.remove("xw-requested");
      if (m.status === "error") showError(m.error ?? "select failed");
    });
  }

  const onTileClick = (ev: Event): void => {
    const tile = (ev.target as Element).closest<HTMLElement>(".xw-tile");
    if (!tile) return;
    const channel = Number(tile.dataset.channel);
    if (channel === selectedChannel() && current) return;
    select(channel);
  };
  tiles.addEventListener("click", onTileClick);

  // --- detail: scrubber + patches -------------------------------------------------------------------
  function drawFrame(k: number): void {
    if (!current || current.frames.length === 0) return;
    frame = resolveFrame(k, current.frames.length);
    drawImage(frameCanvas, current.frames[frame]);
    const step = current.steps[frame] ?? 0;
    slider.value = String(frame);
    frameLabel.textContent = `step ${step} / ${current.nSteps}`;
    plot.mark(curveIndex(step, current.curve.length));
    detail.dataset.step = String(step);
    detail.dataset.frame = String(frame);
  }

  function renderPatches(d: Detail): void {
    patches.replaceChildren();
    if (!d.patches.length) {
      patchNote.textContent = "No data set given: pass images= to see the patches that activate this channel most.";
      return;
    }
    d.patches.forEach((img, i) => {
      const value = d.patchValues[i];
      const image = d.patchImages[i];
      const canvas = canvasOf(img, "xw-patch-canvas", `patch ${i + 1}`);
      const item = h("div", "xw-patch", { "data-image": image, title: `image ${image} · activation ${formatValue(value)}` }, [
        canvas, h("span", "xw-patch-value", {}, [`${formatValue(value)} · img ${image}`]),
      ]);
      patches.append(item);
    });
    const rf = d.receptiveField;
    patchNote.textContent = rf ? `receptive field ${rf[0]}×${rf[1]} px; click a patch for its image's feature maps` : "";
  }

  function renderDetail(): void {
    const payload = model.get("detail");
    const sel = selectedChannel();
    root.dataset.selected = String(sel);
    if (!isDetail(payload) || sel < 0) {
      current = null;
      detail.hidden = true;
      stop();
      return;
    }
    try {
      const changed = !current || current.channel !== payload.channel;
      current = decodeDetail(payload);
      if (changed) following = true;
      detail.hidden = false;
      detail.dataset.channel = String(current.channel);
      const v = current.value;
      detailHead.textContent = `Channel ${current.channel}` + (v !== null ? ` · objective ${formatValue(v)}` : current.done ? "" : " · optimising…");
      slider.max = String(Math.max(0, current.frames.length - 1));
      const xs = Float32Array.from({ length: current.curve.length }, (_, i) => i + 1);
      plot.draw({
        series: [{ xs, ys: current.curve, className: "xw-series-objective", label: "objective" }],
        refs: [],
        marker: -1,
        bracket: null,
        xLabel: "step",
        xDomain: [1, Math.max(2, current.nSteps)],
      });
      renderPatches(current);
      const requested = model.get("frame");
      drawFrame(following || requested < 0 ? current.frames.length - 1 : requested);
    } catch (e) {
      showError(e);
    }
  }

  function stop(): void {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.textContent = "▶ Play";
    play.setAttribute("aria-pressed", "false");
    root.dataset.playing = "false";
  }

  function start(): void {
    if (!current || current.frames.length < 2) return;
    if (frame >= current.frames.length - 1) drawFrame(0);
    following = false;
    play.textContent = "❚❚ Pause";
    play.setAttribute("aria-pressed", "true");
    root.dataset.playing = "true";
    timer = setInterval(() => {
      const k = current ? nextFrame(frame, current.frames.length) : -1;
      if (k < 0) stop();
      else drawFrame(k);
    }, 1000 / FPS);
  }

  const onPlay = (): void => (timer === null ? start() : stop());
  const onSlide = (): void => {
    following = false;
    if (timer !== null) stop();
    drawFrame(Number(slider.value));
  };
  const onSlideEnd = (): void => {
    model.set("frame", frame);
    model.save_changes();
  };
  const onFrameTrait = (): void => {
    const f = model.get("frame");
    following = f < 0;
    if (current && resolveFrame(f, current.frames.length) !== frame) drawFrame(f);
  };
  play.addEventListener("click", onPlay);
  slider.addEventListener("input", onSlide);
  slider.addEventListener("change", onSlideEnd);

  const onPatchClick = (ev: Event): void => {
    const item = (ev.target as Element).closest<HTMLElement>(".xw-patch");
    if (!item) return;
    requestActivations(Number(item.dataset.image), "activations");
  };
  patches.addEventListener("click", onPatchClick);

  // --- activations ----------------------------------------------------------------------------------
  function requestActivations(image: number, thenTab: TabName | null): void {
    if (acts && acts.index === image) {
      if (thenTab) setTab(thenTab);
      return;
    }
    pendingTab = thenTab;
    const req = requests.send("activations", { image });
    void req.done.then((m) => {
      if (m.status === "error") {
        pendingTab = null;
        actNote.textContent = m.error ?? "no activations for this image";
      }
    });
  }

  function renderThumbs(): void {
    const t = model.get("thumbnails");
    thumbs.replaceChildren();
    if (!t || !("images" in t)) return;
    const imgs = decodeStack(t.images);
    imgs.forEach((img, i) => {
      const c = canvasOf(img, "xw-thumb", `image ${i}`);
      c.dataset.index = String(i);
      c.title = `image ${i}`;
      thumbs.append(c);
    });
    markThumb();
  }

  function markThumb(): void {
    for (const c of thumbs.querySelectorAll<HTMLElement>(".xw-thumb")) {
      c.classList.toggle("xw-selected", acts !== null && c.dataset.index === String(acts.index));
    }
  }

  const onThumbClick = (ev: Event): void => {
    const c = (ev.target as Element).closest<HTMLElement>(".xw-thumb");
    if (c) requestActivations(Number(c.dataset.index), null);
  };
  thumbs.addEventListener("click", onThumbClick);

  function drawGrid(): void {
    if (!acts) return;
    const a = acts;
    layout = gridLayout(a.channels, Math.max(a.height, a.width));
    const L = layout;
    actGrid.width = L.width;
    actGrid.height = L.height;
    const ctx = actGrid.getContext("2d");
    if (!ctx) return;
    ctx.clearRect(0, 0, L.width, L.height);
    ctx.imageSmoothingEnabled = false;
    const lut = activationLUT(a.signed);
    const scratch = document.createElement("canvas");
    scratch.width = a.width;
    scratch.height = a.height;
    const sctx = scratch.getContext("2d")!;
    const inGallery = new Set(channels());
    const sel = selectedChannel();
    const mark = getComputedStyle(actGrid).getPropertyValue("--xw-mark").trim() || "#b3261e";
    for (let c = 0; c < a.channels; c++) {
      sctx.putImageData(new ImageData(colourMap(a, c, lut), a.width, a.height), 0, 0);
      const x = (c % L.cols) * (L.cell + L.gap);
      const y = Math.floor(c / L.cols) * (L.cell + L.gap);
      ctx.drawImage(scratch, x, y, L.cell, L.cell);
      if (inGallery.has(c)) {
        ctx.strokeStyle = c === sel ? mark : "rgba(0,0,0,.6)";
        ctx.lineWidth = c === sel ? 3 : 2;
        ctx.strokeRect(x + 1, y + 1, L.cell - 2, L.cell - 2);
      }
    }
    actGrid.style.width = `${Math.min(L.width, 640)}px`;
  }

  function renderActivations(): void {
    const p = model.get("activations");
    if (!isActivations(p)) {
      acts = null;
      renderTab();
      return;
    }
    try {
      acts = decodeActivations(p);
    } catch (e) {
      showError(e);
      return;
    }
    drawImage(actImage, acts.image);
    actNote.textContent = `image ${acts.index}: ${acts.channels} feature maps ${acts.height}×${acts.width}` +
      (acts.signed ? " (each on its own symmetric range, blue < 0 < red)" : " (each on its own range)") +
      "; outlined maps are in the gallery";
    drawGrid();
    markThumb();
    renderTab();
    if (pendingTab) {
      setTab(pendingTab);
      pendingTab = null;
    }
  }

  function gridChannel(ev: MouseEvent): number {
    if (!acts || !layout) return -1;
    const r = actGrid.getBoundingClientRect();
    const sx = actGrid.width / Math.max(1, r.width);
    const sy = actGrid.height / Math.max(1, r.height);
    return cellAt(layout, acts.channels, (ev.clientX - r.left) * sx, (ev.clientY - r.top) * sy);
  }

  const onGridMove = (ev: MouseEvent): void => {
    const c = gridChannel(ev);
    if (c < 0 || !acts) {
      actInfo.textContent = "";
      return;
    }
    const lo = activationValue(acts, c, 0);
    const hi = activationValue(acts, c, 255);
    const inGallery = channels().includes(c) ? " · in the gallery (click to open)" : "";
    actInfo.textContent = `channel ${c} · range ${formatValue(lo)} … ${formatValue(hi)} · mean ${formatValue(acts.mean[c] ?? 0)}${inGallery}`;
  };
  const onGridClick = (ev: MouseEvent): void => {
    const c = gridChannel(ev);
    if (c >= 0 && channels().includes(c)) {
      setTab("features");
      select(c);
    }
  };
  actGrid.addEventListener("mousemove", onGridMove);
  actGrid.addEventListener("click", onGridClick);

  // --- dissection -----------------------------------------------------------------------------------
  function renderDissection(): void {
    const p = model.get("dissection");
    dissTable.replaceChildren();
    if (!isDissection(p)) {
      renderTab();
      return;
    }
    try {
      const rows = dissectionRows(p);
      const inGallery = new Set(channels());
      const sel = selectedChannel();
      const max = Math.max(1e-6, ...rows.map((r) => r.iou));
      dissNote.textContent = `${p.layer}: IoU of each unit's top-${formatValue((1 - p.quantile) * 100)}% region with each concept ` +
        `(Bau et al. 2017), units sorted by their best concept; highlighted units are in the gallery (click to open).`;
      const head = h("tr", "", {}, [
        h("th", "", {}, ["unit"]), h("th", "xw-concept", {}, ["best concept"]), h("th", "", {}, ["IoU"]),
        ...p.concepts.map((c) => h("th", "", {}, [c])),
      ]);
      const body = rows.map((r) => {
        const tr = h("tr", inGallery.has(r.unit) ? "xw-in-gallery" : "", { "data-unit": r.unit }, [
          h("td", "", {}, [String(r.unit)]),
          h("td", "xw-concept", {}, [p.concepts[r.best] ?? ""]),
          h("td", "", {}, [r.iou.toFixed(3)]),
          ...r.values.map((v) => {
            const td = h("td", "xw-iou", {}, [v.toFixed(3)]);
            td.style.background = `color-mix(in srgb, var(--xw-accent) ${Math.round((v / max) * 60)}%, transparent)`;
            return td;
          }),
        ]);
        if (r.unit === sel) tr.classList.add("xw-selected");
        return tr;
      });
      dissTable.append(h("thead", "", {}, [head]), h("tbody", "", {}, body));
    } catch (e) {
      showError(e);
    }
    renderTab();
  }

  const onTableClick = (ev: Event): void => {
    const tr = (ev.target as Element).closest<HTMLElement>("tr.xw-in-gallery");
    if (!tr) return;
    setTab("features");
    select(Number(tr.dataset.unit));
  };
  dissTable.addEventListener("click", onTableClick);

  // --- concepts (ACE) --------------------------------------------------------------------------------
  function renderConcepts(): void {
    const p = model.get("concepts");
    conceptList.replaceChildren();
    conceptRandom.textContent = "";
    if (!isConcepts(p)) {
      renderTab();
      return;
    }
    try {
      conceptNote.textContent = `${p.layer}: concepts discovered in ${p.n_images} images of ${p.target_label} (ACE, ` +
        `Ghorbani et al. 2019), significant ones first, then by TCAV score; significant when its sensitivity lies outside ` +
          `what random concepts of its size reach (p < ${p.alpha}; docs/featurevis.md).`;
      for (const c of conceptCards(p)) {
        const head = h("div", "xw-concept-head", {}, [
          `concept ${c.index} · TCAV ${c.score.toFixed(2)} · ${formatP(c.p_value)} ` +
          `${c.significant ? "✓ significant" : "✗ not significant"} · ${c.n_members} patches from ${c.n_images} images`,
        ]);
        const strip = h("div", "xw-concept-patches", {}, c.patches.map((img, k) => {
          const cv = canvasOf(img, "xw-concept-patch", `patch from image ${c.images[k]}`);
          cv.dataset.image = String(c.images[k]);
          cv.title = `image ${c.images[k]}`;
          return cv;
        }));
        conceptList.append(h("div", "xw-concept-card", {
          "data-concept": c.index, "data-significant": String(c.significant),
        }, [head, strip]));
      }
      const rejected = p.random.filter((r) => !r.significant).length;
      conceptRandom.textContent = p.random.length
        ? `random controls (random patches): ${rejected} of ${p.random.length} rejected (` +
          p.random.map((r) => formatP(r.p_value)).join(", ") + ")"
        : "";
    } catch (e) {
      showError(e);
    }
    renderTab();
  }

  // --- job, title, tabs -----------------------------------------------------------------------------
  const onTabClick = (ev: Event): void => {
    const b = (ev.target as Element).closest<HTMLButtonElement>(".xw-tab");
    if (b && !b.disabled) setTab(b.dataset.tab as TabName);
  };
  const tabBar = root.querySelector(".xw-tabs")!;
  tabBar.addEventListener("click", onTabClick);

  function renderTitle(): void {
    title.textContent = model.get("title") ?? "";
  }

  function onSelected(): void {
    renderTiles();
    renderDetail();
    if (acts) drawGrid();
    renderDissection();
  }

  const listeners: [string, () => void][] = [
    ["change:tiles", renderTiles],
    ["change:objective", renderTiles],
    ["change:channels", renderTiles],
    ["change:selected", onSelected],
    ["change:detail", renderDetail],
    ["change:frame", onFrameTrait],
    ["change:thumbnails", renderThumbs],
    ["change:activations", renderActivations],
    ["change:dissection", renderDissection],
    ["change:concepts", renderConcepts],
    ["change:tab", renderTab],
    ["change:title", renderTitle],
  ];
  for (const [ev, cb] of listeners) model.on(ev, cb);
  following = !(model.get("frame") >= 0);
  renderTitle();
  job.render();
  renderTiles();
  renderThumbs();
  renderActivations();
  renderDissection();
  renderConcepts();
  renderDetail();
  renderTab();
  stop();

  return () => {
    stop();
    for (const [ev, cb] of listeners) model.off(ev, cb);
    tiles.removeEventListener("click", onTileClick);
    play.removeEventListener("click", onPlay);
    slider.removeEventListener("input", onSlide);
    slider.removeEventListener("change", onSlideEnd);
    patches.removeEventListener("click", onPatchClick);
    thumbs.removeEventListener("click", onThumbClick);
    actGrid.removeEventListener("mousemove", onGridMove);
    actGrid.removeEventListener("click", onGridClick);
    dissTable.removeEventListener("click", onTableClick);
    job.destroy();
    tabBar.removeEventListener("click", onTabClick);
    requests.dispose();
    root.remove();
    extra.remove();
  };
}

export default { render };
