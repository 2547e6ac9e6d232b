// AnchorView: an anchor explanation (docs/widget-protocol.md, "AnchorView").
//
// Selectors (stable, used by tests):
//   .xw-anchor-view                 root; data-kind = text | tabular, data-state = ok | error
//   .xw-rule                        "IF <predicates> THEN <prediction>": .xw-predicate (one per rule part),
//                                   .xw-rule-prediction
//   .xw-metric[data-metric=precision|coverage]   .xw-metric-fill (width = value), .xw-metric-value ("96.0%"),
//                                   precision: .xw-metric-threshold at the threshold
//   .xw-anchor-text .xw-anchor-word text: the anchor's words in the sentence (data-index)
//   table.xw-instance               tabular: the row (anchored features first, .xw-anchored)
//   .xw-example-list[data-outcome=hold|fail] .xw-example   samples with the anchor held fixed that keep /
//                                   change the prediction; text: .xw-ex-anchor, .xw-ex-replaced parts;
//                                   tabular: table.xw-examples-table
//   button.xw-show-all              tabular: all features / anchored features only
import { decodeArray, isArrayDict } from "../lib/arrays";
import { h } from "../lib/dom";
import { formatPercent, formatValue } from "../lib/format";
import type { ArrayDict, RenderProps } from "../lib/model";
import { attachTextStyles } from "../lib/textstyles";
import { textSegments } from "../lib/tokens";

type Part = [string, string];

export interface AnchorTraits {
  kind: string;
  title: string;
  prediction: string;
  rule: string[];
  precision: number | null;
  coverage: number | null;
  threshold: number | null;
  n_samples: number;
  converged: boolean;
  text: string;
  features: string[];
  spans: [number, number][] | null;
  anchor: number[];
  feature_values: number[];
  examples_hold: Part[][] | ArrayDict | null;
  examples_fail: Part[][] | ArrayDict | null;
}

const TRAITS: (keyof AnchorTraits)[] = [
  "kind", "title", "prediction", "rule", "precision", "coverage", "threshold", "n_samples", "converged", "text",
  "features", "spans", "anchor", "feature_values", "examples_hold", "examples_fail",
];

const PRECISION_HELP = "precision: share of perturbed samples that keep the anchor and keep the prediction";
const COVERAGE_HELP = "coverage: share of perturbed samples in which the anchor applies";

function metric(name: string, known: number | null, help: string, threshold: number | null): HTMLElement {
  const value = known ?? NaN;
  const fill = h("span", "xw-metric-fill");
  fill.style.width = `${(Number.isFinite(value) ? Math.max(0, Math.min(1, value)) * 100 : 0).toFixed(2)}%`;
  const bar = h("span", "xw-metric-bar", {}, [fill]);
  if (threshold !== null && Number.isFinite(threshold)) {
    const mark = h("span", "xw-metric-threshold", { title: `threshold ${formatPercent(threshold)}` });
    mark.style.left = `calc(${(threshold * 100).toFixed(2)}% - 1px)`;
    bar.append(mark);
  }
  const shown = Number.isFinite(value) ? formatPercent(value) : "n/a";
  return h("div", "xw-metric", { "data-metric": name, title: help }, [
    h("span", "xw-control-name", {}, [name]), bar, h("span", "xw-metric-value", {}, [shown]),
  ]);
}

function ruleBox(rule: string[], prediction: string, kind: string): HTMLElement {
  const parts: (Node | string)[] = [h("span", "xw-rule-kw", {}, ["IF "])];
  if (rule.length === 0) parts.push(h("span", "xw-empty", {}, [kind === "text" ? "(any text)" : "(any row)"]));
  rule.forEach((r, i) => {
    if (i > 0) parts.push(h("span", "xw-rule-kw", {}, [" AND "]));
    parts.push(h("span", "xw-predicate", {}, [r]));
  });
  parts.push(h("span", "xw-rule-kw", {}, [" THEN "]), h("span", "xw-rule-prediction", {}, [prediction]));
  return h("div", "xw-rule", {}, parts);
}

function table(columns: number[], names: string[], rows: number[][], anchored: Set<number>, cls: string): HTMLElement {
  const head = h("tr", "", {}, columns.map((j) => h("th", anchored.has(j) ? "xw-anchored" : "", {}, [names[j] ?? `feature ${j}`])));
  const body = rows.map((r) => h("tr", "", {}, columns.map((j) => h("td", anchored.has(j) ? "xw-anchored" : "", {}, [formatValue(r[j])]))));
  return h("div", "xw-table-wrap", {}, [h("table", `xw-table ${cls}`, {}, [h("thead", "", {}, [head]), h("tbody", "", {}, body)])]);
}

function rowsOf(x: unknown, d: number): number[][] {
  if (!isArrayDict(x)) return [];
  const a = decodeArray(x);
  const n = a.shape[0] ?? 0;
  if (a.shape.length !== 2 || a.shape[1] !== d) throw new Error(`xaiwidgets: example rows must be (n, ${d})`);
  return Array.from({ length: n }, (_, i) => Array.from(a.data.subarray(i * d, (i + 1) * d)));
}

function render({ model, el }: RenderProps<AnchorTraits>): () => void {
  attachTextStyles(el);
  const root = h("div", "xw-widget xw-anchor-view");
  el.append(root);
  let showAll = false;

  function examplesText(list: unknown, outcome: string, label: string): HTMLElement {
    const items = Array.isArray(list) ? (list as Part[][]) : [];
    const children = items.map((parts) => {
      const nodes: (Node | string)[] = [];
      parts.forEach(([word, kind], i) => {
        if (i > 0) nodes.push(" ");
        nodes.push(kind === "anchor" ? h("span", "xw-ex-anchor", {}, [word]) : kind === "replaced" ? h("span", "xw-ex-replaced", {}, [word]) : word);
      });
      return h("div", "xw-example", { "data-outcome": outcome }, nodes);
    });
    return h("div", "xw-example-list", { "data-outcome": outcome }, [
      h("div", "xw-section-title", {}, [`${label} (${items.length})`]),
      ...(children.length ? children : [h("div", "xw-empty", {}, ["none sampled"])]),
    ]);
  }

  function examplesTable(list: unknown, outcome: string, label: string, columns: number[], anchored: Set<number>): HTMLElement {
    const features = model.get("features") ?? [];
    const rows = rowsOf(list, features.length);
    return h("div", "xw-example-list", { "data-outcome": outcome }, [
      h("div", "xw-section-title", {}, [`${label} (${rows.length})`]),
      rows.length ? table(columns, features, rows, anchored, "xw-examples-table") : h("div", "xw-empty", {}, ["none sampled"]),
    ]);
  }

  function draw(): void {
    const kind = model.get("kind") === "tabular" ? "tabular" : "text";
    root.dataset.kind = kind;
    const prediction = model.get("prediction") ?? "";
    const threshold = model.get("threshold");
    const parts: HTMLElement[] = [];
    try {
      const title = model.get("title");
      if (title) parts.push(h("div", "xw-title", {}, [title]));
      parts.push(ruleBox(model.get("rule") ?? [], prediction, kind));
      const n = model.get("n_samples") ?? 0;
      const note = `${n ? `${n} model evaluations` : ""}${model.get("converged") === false ? " · did not reach the precision threshold" : ""}`;
      parts.push(h("div", "xw-metrics", {}, [
        metric("precision", model.get("precision"), PRECISION_HELP, threshold ?? null),
        metric("coverage", model.get("coverage"), COVERAGE_HELP, null),
        h("span", "xw-caption", {}, [note]),
      ]));
      const features = model.get("features") ?? [];
      const anchored = new Set(model.get("anchor") ?? []);
      const holdLabel = `Anchor held, prediction stays ${prediction}`;
      const failLabel = "Anchor held, prediction changes";
      if (kind === "text") {
        const text = h("div", "xw-anchor-text");
        text.append(...textSegments(model.get("text") ?? "", features, model.get("spans")).map((s) =>
          s.feature >= 0 && anchored.has(s.feature)
            ? h("span", "xw-anchor-word", { "data-index": s.feature }, [s.text])
            : document.createTextNode(s.text)));
        parts.push(text);
        parts.push(h("div", "xw-examples", {}, [
          examplesText(model.get("examples_hold"), "hold", holdLabel),
          examplesText(model.get("examples_fail"), "fail", failLabel),
        ]));
      } else {
        const values = model.get("feature_values") ?? [];
        const order = [...anchored, ...features.map((_, j) => j).filter((j) => !anchored.has(j))];
        const columns = showAll ? order : [...anchored];
        const toggle = h("button", "xw-show-all", { type: "button" }, [showAll ? "anchored features only" : `all ${features.length} features`]);
        toggle.addEventListener("click", () => { showAll = !showAll; draw(); });
        parts.push(h("div", "xw-section-title", {}, ["Explained row"]));
        parts.push(table(showAll ? order : columns.length ? columns : order.slice(0, 6), features, [values], anchored, "xw-instance"));
        parts.push(h("div", "xw-examples", {}, [
          examplesTable(model.get("examples_hold"), "hold", holdLabel, columns.length ? columns : order.slice(0, 6), anchored),
          examplesTable(model.get("examples_fail"), "fail", failLabel, columns.length ? columns : order.slice(0, 6), anchored),
        ]));
        parts.push(h("div", "xw-row", {}, [toggle]));
      }
      root.dataset.state = "ok";
    } catch (e) {
      root.dataset.state = "error";
      parts.push(h("div", "xw-error", {}, [e instanceof Error ? e.message : String(e)]));
    }
    root.replaceChildren(...parts);
  }

  const events = TRAITS.map((t) => `change:${t}`);
  for (const ev of events) model.on(ev, draw);
  draw();

  return () => {
    for (const ev of events) model.off(ev, draw);
    root.remove();
  };
}

export default { render };
