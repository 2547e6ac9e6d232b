// Types mirroring the Python traits (docs/widget-protocol.md) and the slice of the anywidget
// model API the views use. Kept local so the bundle has no runtime dependency.
import type { DisplayDefaults } from "./display";
import type { FramesPayload } from "./frames";

export type Callback = (...args: never[]) => void;

/** The anywidget model as seen by `render({ model, el })`. */
export interface AnyModel<T extends object> {
  get<K extends keyof T & string>(key: K): T[K];
  set<K extends keyof T & string>(key: K, value: T[K]): void;
  save_changes(): void;
  on(event: string, callback: Callback): void;
  off(event?: string | null, callback?: Callback | null): void;
  send(content: object, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
}

export interface RenderProps<T extends object> {
  model: AnyModel<T>;
  el: HTMLElement;
}

/** Binary payload as ipywidgets delivers it: DataView (JupyterLab, VS Code), Uint8Array (Colab). */
export type Bytes = DataView | ArrayBuffer | ArrayBufferView;

/** An array on the wire: `{dtype, shape, data}`, plus `vmin`/`vmax` when quantised. */
export interface ArrayDict {
  dtype: string;
  shape: number[];
  data: Bytes;
  vmin?: number;
  vmax?: number;
}

export type ColormapName = "auto" | "diverging" | "viridis" | "inferno" | "jet" | "gray";

/** Display traits shared by HeatmapView and ExplainDashboard. */
export interface DisplayTraits {
  colormap: string;
  opacity: number;
  absolute: boolean;
  /** null: each method's default (lib/display.ts). */
  clip_percentile: number | null;
  /** "auto" (the method's default) | "linear" | "sqrt" | "flat". */
  alpha?: string;
  /** Display-only Gaussian sigma as a fraction of the map's side; null: the method's default. */
  smoothing?: number | null;
  /** "overlay" | "map" | "side" (not `layout`: ipywidgets reserves that name). */
  map_layout?: string;
}

export interface HeatmapTraits extends DisplayTraits {
  image: ArrayDict | null;
  heatmap: ArrayDict | null;
  signed: boolean;
  title: string;
  /** What the values are (the colour bar's label). */
  quantity?: string;
}

export interface Prediction {
  index: number;
  label: string;
  prob: number;
}

export type PanelState = "pending" | "running" | "done" | "error";

/** What a panel shows next to its map (IG: the relative completeness gap and its tolerance). */
export interface PanelNotes {
  completeness_gap?: number;
  tolerance?: number;
  n_steps?: number;
}

export interface Panel {
  method: string;
  state: PanelState;
  heatmap: ArrayDict | null;
  signed: boolean;
  error: string;
  seconds: number;
  target: number;
  /** CAM methods: the layer the result was computed on (the resolved name when automatic). */
  layer?: string;
  notes?: PanelNotes;
}

/** A numeric parameter a method declares tunable (a slider in its dashboard panel). */
export interface TunableSpec {
  min: number;
  max: number;
  step: number;
  integer: boolean;
  /** The method's default value (null when not a number). */
  default: number | null;
}

/** One entry of `available_methods`. */
export interface MethodInfo {
  name: string;
  family: string;
  /** The method records scrubber frames (IG path steps, SmoothGrad samples). */
  frames?: boolean;
  tunable?: Record<string, TunableSpec>;
  /** One line: what the method shows. */
  description?: string;
  /** Its cost in model passes. */
  cost?: string;
  /** A CAM (layer picker). */
  cam?: boolean;
  /** Why it cannot run on this model ("" when it can). */
  unavailable?: string;
  /** Display defaults when the shared controls are on "auto", and the quantity label. */
  display?: DisplayDefaults;
}

/** The dashboard's `scrubber` trait: the frames of one panel, or `{}` when closed. */
export interface DashboardScrubber {
  method: string;
  target: number;
  state: "pending" | "running" | "done" | "cancelled" | "error";
  error: string;
  params: Record<string, unknown>;
  /** A frames dict (docs/widget-protocol.md, "ScrubberView") or `{}` before the first frames. */
  frames: FramesPayload | Record<string, never>;
}

/** The traits of every view that computes in the kernel (read by lib/status.ts only). */
export interface JobTraits {
  progress: number;
  /** "idle" | "running" | "done" | "cancelled" | "error" (lib/status.ts, `JobStatus`). */
  status: string;
  /** The last job's error ("" unless status is "error"). */
  error?: string;
}

export interface DashboardTraits extends DisplayTraits, JobTraits {
  image: ArrayDict | null;
  predictions: Prediction[];
  target: number;
  methods: string[];
  panels: Panel[];
  available_methods: MethodInfo[];
  layers: string[];
  method_params: Record<string, Record<string, unknown>>;
  scrubber: DashboardScrubber | Record<string, never>;
  /** The layers a CAM usually explains (block outputs); `layers` is the full list. */
  cam_layers?: string[];
}

/** Messages from the kernel (`widget.send`). */
export interface KernelMessage {
  type: string;
  id?: string;
  status?: string;
  error?: string;
}
