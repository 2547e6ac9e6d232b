// The job state of a computing view (docs/widget-protocol.md, "Requests and jobs"): the kernel's
// `progress`, `status` (an enum) and `error` traits are read here and nowhere else, and `createJobLine`
// draws them (progress bar, status line, Cancel) the same way in every view.
import { createJobControls, h } from "./dom";
import type { AnyModel, JobTraits } from "./model";
import type { Requests } from "./requests";

/** Nothing ran yet, a job is running, and how the last one ended. */
export type JobStatus = "idle" | "running" | "done" | "cancelled" | "error";
export const JOB_STATUSES: readonly JobStatus[] = ["idle", "running", "done", "cancelled", "error"];

export type { JobTraits };

export interface JobState {
  status: JobStatus;
  error: string;
  /** 0..1 (clamped; 0 when not a number). */
  progress: number;
}

/** The status and error from the traits' values. Widget state saved before the enum (`"computing"`,
 *  `"error: message"`) still reads correctly; anything unknown is "idle". */
export function parseStatus(status: unknown, error: unknown = ""): { status: JobStatus; error: string } {
  const s = typeof status === "string" ? status : "";
  const e = typeof error === "string" ? error : "";
  if ((JOB_STATUSES as readonly string[]).includes(s)) return { status: s as JobStatus, error: s === "error" ? e : "" };
  if (s === "computing") return { status: "running", error: "" };
  if (s.startsWith("error")) return { status: "error", error: e || s.replace(/^error:?\s*/, "") };
  return { status: "idle", error: "" };
}

export function readJob(model: AnyModel<JobTraits>): JobState {
  const p = Number(model.get("progress"));
  return {
    ...parseStatus(model.get("status"), model.get("error")),
    progress: Number.isFinite(p) ? Math.max(0, Math.min(1, p)) : 0,
  };
}

/** The status line: the status, with the error's message. */
export function statusText(state: JobState): string {
  return state.status === "error" && state.error ? `error: ${state.error}` : state.status;
}

export interface JobLineOptions {
  requests: Requests;
  /** Elements before the progress bar in the job line. */
  before?: Node[];
  /** The status line's text (default: `statusText`). */
  label?: (state: JobState) => string;
  /** The bar's fraction (default: the `progress` trait). */
  progress?: (state: JobState) => number;
  /** Hide the bar (default: when nothing ran yet). */
  hidden?: (state: JobState, progress: number) => boolean;
  /** Whether Cancel is enabled (default: while running). */
  cancellable?: (state: JobState) => boolean;
  /** After the cancel request was sent. */
  onCancel?: () => void;
  /** After each render (a view that follows the job state). */
  onRender?: (state: JobState) => void;
  /** More traits whose change re-renders the line (e.g. "phase"). */
  traits?: string[];
}

export interface JobLine {
  /** `.xw-job`: [before...] `.xw-progress[role=progressbar]` `.xw-status` `button.xw-cancel`. */
  el: HTMLDivElement;
  /** Also mark `root` with `data-status` = the status (the view's root element). */
  mark(root: HTMLElement): void;
  render(): void;
  state(): JobState;
  destroy(): void;
}

/** The job line of a computing view, bound to its traits; Cancel sends `{type: "cancel", id}`. */
export function createJobLine(model: AnyModel<JobTraits>, options: JobLineOptions): JobLine {
  const { fill, progress, status, cancel } = createJobControls();
  const el = h("div", "xw-job", {}, [...(options.before ?? []), progress, status, cancel]);
  const marked: HTMLElement[] = [];

  function render(): void {
    const state = readJob(model);
    const p = options.progress ? options.progress(state) : state.progress;
    fill.style.width = `${p * 100}%`;
    progress.setAttribute("aria-valuenow", String(p));
    progress.title = `${Math.round(p * 100)}%`;
    progress.hidden = options.hidden ? options.hidden(state, p) : state.status === "idle" && p === 0;
    status.textContent = options.label ? options.label(state) : statusText(state);
    status.title = statusText(state);
    status.dataset.kind = state.status;
    for (const root of marked) root.dataset.status = state.status;
    cancel.disabled = !(options.cancellable ? options.cancellable(state) : state.status === "running");
    options.onRender?.(state);
  }
  const onCancel = (): void => {
    options.requests.notify("cancel");
    options.onCancel?.();
  };
  cancel.addEventListener("click", onCancel);
  const events = ["progress", "status", "error", ...(options.traits ?? [])].map((t) => `change:${t}`);
  for (const ev of events) model.on(ev, render);

  return {
    el,
    mark: (root) => void marked.push(root),
    render,
    state: () => readJob(model),
    destroy() {
      for (const ev of events) model.off(ev, render);
      cancel.removeEventListener("click", onCancel);
    },
  };
}
