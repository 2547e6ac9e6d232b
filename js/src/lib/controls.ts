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

export function createControls(model: AnyModel<DisplayTraits>): Controls {
  const colormap = h("select", "xw-colormap", { "aria-label": "colour map" },
    COLORMAPS.map((name) => h("option", "", { value: name }, [LABELS[name] ?? name])));
  const opacity = h("input", "xw-opacity", { type: "range", min: 0, max: 1, step: 0.01, "aria-label": "overlay opacity" });
  const opacityOut = h("span", "xw-value");
  const absolute = h("input", "xw-absolute", { type: "checkbox" });
  const clip = h("input", "xw-clip", { type: "range", min: 50, max: 100, step: 0.1, "aria-label": "clip percentile" });
  const clipOut = h("span", "xw-value");

  const el = h("div", "xw-controls", {}, [
    h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["Colours"]), colormap]),
    h("label", "xw-control", { title: "overlay opacity" }, [h("span", "xw-control-name", {}, ["Opacity"]), opacity, opacityOut]),
    h("label", "xw-control", { title: "show |value| instead of the signed value" }, [absolute, h("span", "xw-control-name", {}, ["|v|"])]),
    h("label", "xw-control", { title: "values beyond this percentile of |v| saturate" }, [h("span", "xw-control-name", {}, ["Clip"]), clip, clipOut]),
  ]);

  const write = <K extends keyof DisplayTraits>(key: K, value: DisplayTraits[K]): void => {
    model.set(key, value);
    model.save_changes();
  };
  const onColormap = (): void => write("colormap", colormap.value);
  const onOpacity = (): void => write("opacity", Number(opacity.value));
  const onAbsolute = (): void => write("absolute", absolute.checked);
  const onClip = (): void => write("clip_percentile", Number(clip.value));
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
    clip.value = String(d.clip_percentile);
    clipOut.textContent = `${Number(d.clip_percentile.toFixed(1))}%`;
  }

  function destroy(): void {
    colormap.removeEventListener("change", onColormap);
    opacity.removeEventListener("input", onOpacity);
    absolute.removeEventListener("change", onAbsolute);
    clip.removeEventListener("input", onClip);
  }

  sync();
  return { el, sync, destroy };
}

export const DISPLAY_TRAITS = ["colormap", "opacity", "absolute", "clip_percentile"] as const;

export function readDisplay(model: AnyModel<DisplayTraits>): DisplayTraits {
  return {
    colormap: model.get("colormap") ?? "auto",
    opacity: model.get("opacity") ?? 0.6,
    absolute: Boolean(model.get("absolute")),
    clip_percentile: model.get("clip_percentile") ?? 99.5,
  };
}
