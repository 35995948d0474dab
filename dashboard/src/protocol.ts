// The shapes of the server's contract (driftloop/serving/schemas.py), generated into
// ./generated/api.ts; this module names them as the dashboard uses them. Times are epoch
// seconds. PROTOCOL.md tells the story.
import type { Frame as AnyFrame, PongFrame, Run, Traffic } from "./generated/api";

export type {
  Alarm,
  DriftPoint,
  ErrorResponse,
  FeatureDrift,
  LabelShare,
  Lineage,
  LineageEdge,
  LineageNode,
  LogLine,
  MetricsPoint,
  PointStats,
  Report,
  RetrainAnswer,
  Run,
  Shadow,
  ShadowEvidence,
  Shares,
  Slot,
  Snapshot,
  State,
  Thresholds,
  Traffic,
  TrafficPoint,
  TrafficRequest,
  Version,
} from "./generated/api";

export type LoopState = Run["state"];
export type TrafficMode = Traffic["mode"];

/** Every loop state, in the order the state machine visits them. */
export const LOOP_STATES = [
  "IDLE",
  "SNAPSHOTTING",
  "TRAINING",
  "EVALUATING",
  "SHADOWING",
  "PROMOTED",
  "REJECTED",
  "COOLDOWN",
  "FAILED",
] as const satisfies readonly LoopState[];

export const TRAFFIC_MODES = ["off", "shadow", "canary", "ab"] as const satisfies readonly TrafficMode[];

// Each list names every member of its union: a state or mode added to the contract fails here.
type Missing<All, Listed> = Exclude<All, Listed> extends never ? true : Exclude<All, Listed>;
const everyState: Missing<LoopState, (typeof LOOP_STATES)[number]> = true;
const everyMode: Missing<TrafficMode, (typeof TRAFFIC_MODES)[number]> = true;
void everyState;
void everyMode;

/** The frames the dashboard applies (a pong only answers its ping). */
export type Frame = Exclude<AnyFrame, PongFrame>;

const FRAME_TYPES: ReadonlySet<string> = new Set<Frame["type"]>([
  "snapshot",
  "drift",
  "state",
  "run",
  "log",
  "lineage",
  "traffic",
  "metrics",
]);

/** A known frame from a text message; null for bad JSON, a non-envelope or an unknown type. */
export function parseFrame(text: string): Frame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { type, data } = value as { type?: unknown; data?: unknown };
  if (typeof type !== "string" || !FRAME_TYPES.has(type) || typeof data !== "object" || data === null) {
    return null;
  }
  return value as Frame;
}
