// Browser → kernel requests tagged with an id; the promise resolves on {type: "done", id}.
import type { AnyModel, KernelMessage } from "./model";

let counter = 0;

export function newRequestId(): string {
  counter += 1;
  return `xw-${Date.now().toString(36)}-${counter.toString(36)}`;
}

export interface DoneMessage extends KernelMessage {
  type: "done";
  id: string;
  status: "done" | "cancelled" | "error";
}

export interface Request {
  id: string;
  /** Set once the kernel answered {type: "accepted"}. */
  accepted: boolean;
  done: Promise<DoneMessage>;
}

export interface Requests {
  /** Send and track until {type: "done", id}. */
  send(type: string, fields?: Record<string, unknown>): Request;
  /** Send with a fresh id, untracked (requests the kernel only acknowledges, e.g. cancel). */
  notify(type: string, fields?: Record<string, unknown>): string;
  /** Requests sent and not done yet. */
  pending(): number;
  dispose(): void;
}

export function createRequests(model: AnyModel<object>): Requests {
  const open = new Map<string, { req: Request; resolve: (m: DoneMessage) => void }>();

  const onMessage = (msg: KernelMessage): void => {
    if (!msg || typeof msg !== "object" || typeof msg.id !== "string") return;
    const entry = open.get(msg.id);
    if (!entry) return;
    if (msg.type === "accepted") entry.req.accepted = true;
    if (msg.type === "done") {
      open.delete(msg.id);
      entry.resolve(msg as DoneMessage);
    }
  };
  model.on("msg:custom", onMessage);

  return {
    send(type, fields = {}) {
      const id = newRequestId();
      let resolve!: (m: DoneMessage) => void;
      const done = new Promise<DoneMessage>((r) => (resolve = r));
      const req: Request = { id, accepted: false, done };
      open.set(id, { req, resolve });
      model.send({ ...fields, type, id });
      return req;
    },
    notify(type, fields = {}) {
      const id = newRequestId();
      model.send({ ...fields, type, id });
      return id;
    },
    pending: () => open.size,
    dispose() {
      model.off("msg:custom", onMessage);
      open.clear();
    },
  };
}
