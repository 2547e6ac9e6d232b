import { describe, expect, it } from "vitest";
import type { AnyModel, Callback } from "../src/lib/model";
import { createRequests } from "../src/lib/requests";

function fakeModel() {
  const handlers = new Map<string, Set<Callback>>();
  const sent: Record<string, unknown>[] = [];
  const model: AnyModel<object> = {
    get: () => undefined as never,
    set: () => {},
    save_changes: () => {},
    on: (ev, cb) => void (handlers.get(ev) ?? handlers.set(ev, new Set()).get(ev)!).add(cb),
    off: (ev, cb) => void (ev && cb ? handlers.get(ev)?.delete(cb) : handlers.clear()),
    send: (msg) => void sent.push(msg as Record<string, unknown>),
  };
  const emit = (msg: object): void => {
    for (const cb of handlers.get("msg:custom") ?? []) (cb as (m: object) => void)(msg);
  };
  return { model, sent, emit, handlers };
}

describe("requests", () => {
  it("sends {type, id, ...fields} and resolves on the matching done", async () => {
    const { model, sent, emit } = fakeModel();
    const r = createRequests(model);
    const a = r.send("compute", { target: 3 });
    const b = r.send("cancel");
    expect(sent).toEqual([
      { type: "compute", id: a.id, target: 3 },
      { type: "cancel", id: b.id },
    ]);
    expect(a.id).not.toBe(b.id);
    emit({ type: "accepted", id: a.id });
    expect(a.accepted).toBe(true);
    emit({ type: "done", id: "someone-else", status: "done" });
    emit({ type: "done", id: a.id, status: "cancelled" });
    await expect(a.done).resolves.toMatchObject({ status: "cancelled" });
    expect(r.pending()).toBe(1);
  });

  it("notify sends with a fresh id and tracks nothing", () => {
    const { model, sent } = fakeModel();
    const r = createRequests(model);
    const id = r.notify("cancel");
    expect(sent).toEqual([{ type: "cancel", id }]);
    expect(r.pending()).toBe(0);
  });

  it("dispose removes the listener", () => {
    const { model, handlers } = fakeModel();
    const r = createRequests(model);
    expect(handlers.get("msg:custom")?.size).toBe(1);
    r.dispose();
    expect(handlers.get("msg:custom")?.size).toBe(0);
  });
});
