import type { Frame, Snapshot } from "../src/protocol";
import type { SocketLike } from "../src/useReconnectingSocket";
import { useDashboard } from "../src/store";
import labelShareRun from "./fixtures/run_label_share.json";
import fixture from "./fixtures/snapshot.json";

/** A shadowing run whose labels arrive later for one predicted class: its evidence has
 * the label share and a warning (fixtures/run_label_share.json, checked by the contract). */
export function labelShareRunFrame(): Frame {
  return structuredClone(labelShareRun) as Frame;
}

/** A fresh copy of the fixture's snapshot data (tests may mutate it). */
export function snapshotData(): Snapshot {
  return structuredClone(fixture.data) as Snapshot;
}

export function snapshotFrame(seq = 1): Frame {
  return { type: "snapshot", seq, at: fixture.at, data: snapshotData() };
}

let seq = 100;

/** A delta frame of the given type, with the next seq. */
export function delta<T extends Exclude<Frame["type"], "snapshot">>(type: T, data: Extract<Frame, { type: T }>["data"]): Frame {
  seq += 1;
  return { type, seq, at: fixture.at + seq, data } as Frame;
}

/** Put the fixture's snapshot in the store, as the first frame of a connection would. */
export function loadSnapshot(): Snapshot {
  const frame = snapshotFrame();
  useDashboard.getState().apply(frame);
  return frame.data as Snapshot;
}

export function apply(frame: Frame): void {
  useDashboard.getState().apply(frame);
}

/** A socket the test plays the server of: the last one made is `ServerSocket.last`. */
export class ServerSocket implements SocketLike {
  static last: ServerSocket | null = null;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  constructor(readonly url: string) {
    ServerSocket.last = this;
  }
  close() {}
}
