// Shared display controls: colour map, opacity, absolute toggle, clip percentile. Each writes its
// trait (model.set + save_changes); the view re-renders from its change:<trait> listener, so a
// change made here, by the kernel or by another view of the same widget takes one path.
import { COLORMAPS } from "./colormaps";
import { h } from "./dom";
import type { AnyModel, DisplayTraits } from "./model";

export interface Controls {
  el: HTMLElement;
  /** Show the model's current values. */
  sync(): void;
  destroy(): void;
}

const LABELS: Record<string, string> = { auto: "auto", diverging: "blue-white-red" };
const ALPHA_OPTIONS: [string, string][] = [["auto", "auto"], ["linear", "linear"], ["sqrt", "sqrt"], ["flat", "flat"]];
const SMOOTH_OPTIONS: [string, string][] = [["auto", "auto"], ["0", "off"], ["0.004", "light"], ["0.007", "medium"], ["0.015", "strong"]];
const LAYOUT_OPTIONS: [string, string][] = [["overlay", "overlay"], ["map", "map only"], ["side", "side by side"]];

export function createControls(model: AnyModel<DisplayTraits>): Controls {
  const colormap = h("select", "xw-colormap", { "aria-label": "colour map" },
    COLORMAPS.map((name) => h("option", "", { value: name }, [LABELS[name] ?? name])));
  const opacity = h("input", "xw-opacity", { type: "range", min: 0, max: 1, step: 0.01, "aria-label": "overlay opacity" });
  const opacityOut = h("span", "xw-value");
  const absolute = h("input", "xw-absolute", { type: "checkbox" });
  const clip = h("input", "xw-clip", { type: "range", min: 50, max: 100, step: 0.1, "aria-label": "clip percentile" });
  const clipOut = h("span", "xw-value");
  const clipAuto = h("button", "xw-clip-auto", { type: "button", title: "give each method its own clip, alpha and smoothing again" }, ["method defaults"]);
  const alpha = h("select", "xw-alpha", { "aria-label": "overlay alpha" },
    ALPHA_OPTIONS.map(([v, label]) => h("option", "", { value: v }, [label])));
  const smoothing = h("select", "xw-smoothing", { "aria-label": "display smoothing" },
    SMOOTH_OPTIONS.map(([v, label]) => h("option", "", { value: v }, [label])));
  const layout = h("select", "xw-layout", { "aria-label": "layout" },
    LAYOUT_OPTIONS.map(([v, label]) => h("option", "", { value: v }, [label])));

  const el = h("div", "xw-controls", {}, [
    h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["Colours"]), colormap]),
    h("label", "xw-control", { title: "overlay opacity" }, [h("span", "xw-control-name", {}, ["Opacity"]), opacity, opacityOut]),
    h("label", "xw-control", { title: "show |value| instead of the signed value" }, [absolute, h("span", "xw-control-name", {}, ["|v|"])]),
    h("label", "xw-control", { title: "values beyond this percentile of |v| saturate" }, [h("span", "xw-control-name", {}, ["Clip"]), clip, clipOut]),
    h("label", "xw-control", { title: "how transparency follows |v|" }, [h("span", "xw-control-name", {}, ["Alpha"]), alpha]),
    h("label", "xw-control", { title: "Gaussian blur for display only (values and range are unsmoothed)" }, [h("span", "xw-control-name", {}, ["Smooth"]), smoothing]),
    clipAuto,
    h("label", "xw-control", { title: "map over the photo, the map alone, or both side by side" }, [h("span", "xw-control-name", {}, ["View"]), layout]),
  ]);

  const write = <K extends keyof DisplayTraits>(key: K, value: DisplayTraits[K]): void => {
    model.set(key, value);
    model.save_changes();
  };
  const onColormap = (): void => write("colormap", colormap.value);
  const onOpacity = (): void => write("opacity", Number(opacity.value));
  const onAbsolute = (): void => write("absolute", absolute.checked);
  const onClip = (): void => write("clip_percentile", Number(clip.value));
  const onAlpha = (): void => write("alpha", alpha.value);
  const onSmoothing = (): void => write("smoothing", smoothing.value === "auto" ? null : Number(smoothing.value));
  const onLayout = (): void => write("map_layout", layout.value);
  const onAuto = (): void => {
    model.set("clip_percentile", null);
    model.set("alpha", "auto");
    model.set("smoothing", null);
    model.save_changes();
  };
  alpha.addEventListener("change", onAlpha);
  smoothing.addEventListener("change", onSmoothing);
  layout.addEventListener("change", onLayout);
  clipAuto.addEventListener("click", onAuto);
  colormap.addEventListener("change", onColormap);
  opacity.addEventListener("input", onOpacity);
  absolute.addEventListener("change", onAbsolute);
  clip.addEventListener("input", onClip);

  function sync(): void {
    const d = readDisplay(model);
    if (!Array.from(colormap.options).some((o) => o.value === d.colormap)) {
      // A name the menu does not list: show it rather than pretend it is "auto".
      colormap.append(h("option", "", { value: d.colormap }, [d.colormap]));
    }
    colormap.value = d.colormap;
    opacity.value = String(d.opacity);
    opacityOut.textContent = `${Math.round(d.opacity * 100)}%`;
    absolute.checked = d.absolute;
    const autoClip = d.clip_percentile === null;
    clip.value = String(autoClip ? 98 : d.clip_percentile);
    clipOut.textContent = autoClip ? "auto" : `${Number(d.clip_percentile!.toFixed(1))}%`;
    alpha.value = d.alpha ?? "auto";
    const s = d.smoothing === null || d.smoothing === undefined ? "auto" : String(d.smoothing);
    if (!Array.from(smoothing.options).some((o) => o.value === s)) smoothing.append(h("option", "", { value: s }, [s]));
    smoothing.value = s;
    layout.value = d.map_layout ?? "overlay";
    clipAuto.disabled = autoClip && (d.alpha ?? "auto") === "auto" && s === "auto";
  }

  function destroy(): void {
    colormap.removeEventListener("change", onColormap);
    opacity.removeEventListener("input", onOpacity);
    absolute.removeEventListener("change", onAbsolute);
    clip.removeEventListener("input", onClip);
    alpha.removeEventListener("change", onAlpha);
    smoothing.removeEventListener("change", onSmoothing);
    layout.removeEventListener("change", onLayout);
    clipAuto.removeEventListener("click", onAuto);
  }

  sync();
  return { el, sync, destroy };
}

export const DISPLAY_TRAITS = ["colormap", "opacity", "absolute", "clip_percentile", "alpha", "smoothing", "map_layout"] as const;

/** The display traits; clip_percentile null / alpha "auto" / smoothing null mean "the method's default". */
export function readDisplay(model: AnyModel<DisplayTraits>): DisplayTraits {
  const clip = model.get("clip_percentile");
  const smoothing = model.get("smoothing");
  return {
    colormap: model.get("colormap") ?? "auto",
    opacity: model.get("opacity") ?? 0.6,
    absolute: Boolean(model.get("absolute")),
    clip_percentile: typeof clip === "number" ? clip : null,
    alpha: model.get("alpha") ?? "auto",
    smoothing: typeof smoothing === "number" ? smoothing : null,
    map_layout: model.get("map_layout") ?? "overlay",
  };
}
