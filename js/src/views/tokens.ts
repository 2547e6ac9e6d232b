// TokenView: one text, each token's (or word's) background coloured by its attribution
// (docs/widget-protocol.md, "TokenView").
//
// Selectors (stable, used by tests):
//   .xw-textview                    root; data-state = ok | empty | error, data-level = word | token
//   .xw-title  .xw-caption          caption lines (traits `title`, `caption`)
//   .xw-level button[data-level]    word / word-piece toggle (aria-pressed; disabled when the level is absent)
//   .xw-signed-legend               colour key: .xw-legend-min / -mid / -max
//   .xw-tokens .xw-token            one per feature: data-index, data-value, data-sign = pos | neg | zero,
//                                   background rgba(red|blue, alpha ~ |v|); hover or focus shows .xw-tooltip
//   .xw-bars .xw-bar-row            top features by |value|: data-index, data-sign; .xw-bar-fill, .xw-bar-value
//   .xw-error                       decode/render error text
import { decodeArray, isArrayDict } from "../lib/arrays";
import { createBarList } from "../lib/bars";
import { h } from "../lib/dom";
import { formatValue } from "../lib/format";
import type { ArrayDict, RenderProps } from "../lib/model";
import { maxAbs, signedRGBA, signOf } from "../lib/signed";
import { createSignedLegend } from "../lib/signedlegend";
import { attachTextStyles } from "../lib/textstyles";
import { positionedLabels, textSegments, topFeatures } from "../lib/tokens";
import { createTooltip } from "../lib/tooltip";

export interface LevelPayload {
  features: string[];
  values: ArrayDict;
  spans: [number, number][] | null;
  /** Token level: each token's word index. */
  groups?: number[];
}

export interface TokenTraits {
  text: string;
  levels: Record<string, LevelPayload>;
  level: string;
  signed: boolean;
  title: string;
  caption: string;
  top_k: number;
}

const TRAITS = ["text", "levels", "level", "signed", "title", "caption", "top_k"] as const;
const LEVEL_NAMES: [string, string][] = [["word", "words"], ["token", "word pieces"]];

function render({ model, el }: RenderProps<TokenTraits>): () => void {
  attachTextStyles(el);
  const title = h("div", "xw-title");
  const caption = h("div", "xw-caption");
  const buttons = LEVEL_NAMES.map(([level, label]) => h("button", "", { type: "button", "data-level": level }, [label]));
  const toggle = h("div", "xw-level", { role: "group", "aria-label": "attribution level" }, buttons);
  const legend = createSignedLegend();
  const tokens = h("div", "xw-tokens");
  const topTitle = h("div", "xw-section-title", {}, ["Top features"]);
  const error = h("div", "xw-error");
  const root = h("div", "xw-widget xw-textview", {}, [
    title, caption, h("div", "xw-row", {}, [toggle, legend.el]), tokens, topTitle, error,
  ]);
  const tooltip = createTooltip(root);
  let current: { features: string[]; values: ArrayLike<number>; words: string[] | null; ranks: number[] } | null = null;

  const bars = createBarList((index, row) => {
    for (const t of tokens.querySelectorAll(".xw-hot")) t.classList.remove("xw-hot");
    if (index < 0 || !row) return tooltip.hide();
    const token = tokens.querySelector(`.xw-token[data-index="${index}"]`);
    token?.classList.add("xw-hot");
    tooltip.show(describe(index), row);
  });
  root.insertBefore(bars.el, error);
  el.append(root);

  function describe(i: number): string[] {
    if (!current) return [];
    const v = current.values[i];
    const lines = [current.features[i], `attribution ${v > 0 && model.get("signed") ? "+" : ""}${formatValue(v)}`];
    lines.push(`rank ${current.ranks[i] + 1} of ${current.features.length} by |value|`);
    if (current.words) lines.push(`in the word "${current.words[i]}"`);
    return lines;
  }

  function onEnter(ev: Event): void {
    const t = (ev.target as Element).closest?.(".xw-token") as HTMLElement | null;
    if (t) tooltip.show(describe(Number(t.dataset.index)), t);
  }
  const onLeave = (): void => tooltip.hide();
  tokens.addEventListener("mouseover", onEnter);
  tokens.addEventListener("focusin", onEnter);
  tokens.addEventListener("mouseleave", onLeave);
  tokens.addEventListener("focusout", onLeave);

  const onClick = (ev: Event): void => {
    const level = (ev.currentTarget as HTMLElement).dataset.level ?? "word";
    model.set("level", level);
    model.save_changes();
  };
  for (const b of buttons) b.addEventListener("click", onClick);

  function draw(): void {
    title.textContent = model.get("title") ?? "";
    title.hidden = !title.textContent;
    caption.textContent = model.get("caption") ?? "";
    error.textContent = "";
    tooltip.hide();
    const levels = model.get("levels") ?? {};
    let level = model.get("level") ?? "word";
    if (!(level in levels)) level = "word" in levels ? "word" : Object.keys(levels)[0];
    for (const b of buttons) {
      const available = (b.dataset.level ?? "") in levels;
      b.disabled = !available;
      b.setAttribute("aria-pressed", String(b.dataset.level === level));
      b.title = available ? "" : "this explanation has no separate word pieces";
    }
    const payload = level ? levels[level] : undefined;
    root.dataset.level = level ?? "";
    if (!payload || !isArrayDict(payload.values)) {
      root.dataset.state = "empty";
      tokens.replaceChildren();
      bars.update([], 0, true);
      current = null;
      return;
    }
    try {
      const values = decodeArray(payload.values).data;
      const features = payload.features ?? [];
      if (values.length !== features.length) {
        throw new Error(`xaiwidgets: ${features.length} features but ${values.length} values`);
      }
      const signed = Boolean(model.get("signed"));
      const clip = maxAbs(values);
      const order = topFeatures(values, features.length);
      const ranks = new Array<number>(features.length).fill(features.length - 1);
      order.forEach((f, r) => (ranks[f] = r));
      const words = level === "token" && Array.isArray(payload.groups) && levels.word
        ? payload.groups.map((g) => levels.word.features[g] ?? "")
        : null;
      current = { features, values, words, ranks };
      const groups = payload.groups;
      const multi = new Set<number>();
      if (level === "token" && groups) {
        const count = new Map<number, number>();
        for (const g of groups) count.set(g, (count.get(g) ?? 0) + 1);
        groups.forEach((g, i) => (count.get(g) ?? 0) > 1 && multi.add(i));
      }
      tokens.replaceChildren(
        ...textSegments(model.get("text") ?? "", features, payload.spans).map((seg) => {
          if (seg.feature < 0) return document.createTextNode(seg.text);
          const v = values[seg.feature];
          const span = h("span", multi.has(seg.feature) ? "xw-token xw-piece" : "xw-token", {
            tabindex: 0,
            "data-index": seg.feature,
            "data-value": String(v),
            "data-sign": signOf(v),
            "aria-label": `${features[seg.feature]}: ${formatValue(v)}`,
          }, [seg.text]);
          span.style.background = signedRGBA(v, clip, signed);
          return span;
        }),
      );
      legend.update(clip, signed);
      const k = Math.max(0, Math.min(model.get("top_k") ?? 10, features.length));
      topTitle.hidden = bars.el.hidden = k === 0;
      topTitle.textContent = `Top ${k} ${level === "token" ? "word pieces" : "features"} by |attribution|`;
      const labels = positionedLabels(features);
      bars.update(order.slice(0, k).map((i) => ({ index: i, label: labels[i], value: values[i] })), clip, signed);
      root.dataset.state = "ok";
    } catch (e) {
      root.dataset.state = "error";
      error.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  const events = TRAITS.map((t) => `change:${t}`);
  for (const ev of events) model.on(ev, draw);
  draw();

  return () => {
    for (const ev of events) model.off(ev, draw);
    for (const b of buttons) b.removeEventListener("click", onClick);
    root.remove();
  };
}

export default { render };
