import { describe, expect, it } from "vitest";
import type { AnyModel, JobTraits } from "../src/lib/model";
import { JOB_STATUSES, parseStatus, readJob, statusText } from "../src/lib/status";

function model(traits: Partial<Record<keyof JobTraits, unknown>>): AnyModel<JobTraits> {
  return {
    get: (key) => traits[key] as never,
    set: () => {},
    save_changes: () => {},
    on: () => {},
    off: () => {},
    send: () => {},
  };
}

describe("status", () => {
  it("reads every value of the enum as itself", () => {
    for (const s of JOB_STATUSES) expect(parseStatus(s).status).toBe(s);
  });

  it("takes the message from the error trait, only for errors", () => {
    expect(parseStatus("error", "ValueError: no class 7")).toEqual({ status: "error", error: "ValueError: no class 7" });
    expect(parseStatus("done", "stale")).toEqual({ status: "done", error: "" });
  });

  it("reads state saved before the enum", () => {
    expect(parseStatus("computing")).toEqual({ status: "running", error: "" });
    expect(parseStatus("error: kernel said no")).toEqual({ status: "error", error: "kernel said no" });
    expect(parseStatus("error: old", "new")).toEqual({ status: "error", error: "new" });
  });

  it("treats anything else as idle", () => {
    for (const v of [undefined, null, 3, "", "bogus", {}]) expect(parseStatus(v)).toEqual({ status: "idle", error: "" });
  });

  it("clamps the progress and ignores what is not a number", () => {
    expect(readJob(model({ status: "running", progress: 0.4 }))).toEqual({ status: "running", error: "", progress: 0.4 });
    expect(readJob(model({ progress: 7 })).progress).toBe(1);
    expect(readJob(model({ progress: -1 })).progress).toBe(0);
    expect(readJob(model({ progress: "x" })).progress).toBe(0);
    expect(readJob(model({})).status).toBe("idle");
  });

  it("writes the status line with the error's message", () => {
    expect(statusText({ status: "error", error: "boom", progress: 0 })).toBe("error: boom");
    expect(statusText({ status: "error", error: "", progress: 0 })).toBe("error");
    expect(statusText({ status: "cancelled", error: "", progress: 0.3 })).toBe("cancelled");
  });
});
