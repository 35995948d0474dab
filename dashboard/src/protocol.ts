// The shapes of dashboard/PROTOCOL.md, one type per shape. Times are epoch seconds.

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
] as const;
export type LoopState = (typeof LOOP_STATES)[number];

export const TRAFFIC_MODES = ["off", "shadow", "canary", "ab"] as const;
export type TrafficMode = (typeof TRAFFIC_MODES)[number];

export interface Shares {
  champion: number;
  candidate: number;
  shadow: number;
}

export interface Traffic {
  mode: TrafficMode;
  weight: number;
  shadow_fraction: number;
  shares: Shares;
}

export interface TrafficPoint extends Traffic {
  at: number;
}

export interface Slot {
  version: number;
  queue_depth: number;
}

export interface State {
  model: string;
  generation: number;
  champion: Slot | null;
  candidate: Slot | null;
  traffic: Traffic;
  alarms: number;
  loop: { state: LoopState; run_id: string | null; cooldown_until: number | null };
}

export interface FeatureDrift {
  name: string;
  kind: "numeric" | "categorical";
  count: number;
  missing: number;
  ks_statistic: number | null;
  ks_pvalue: number | null;
  chi2_statistic: number | null;
  chi2_pvalue: number | null;
  psi: number | null;
  js_distance: number | null;
  drifted: boolean;
  significant: boolean;
  effect: number | null;
  bins: string[];
  reference_histogram: number[];
  current_histogram: number[];
}

export interface Report {
  features: Record<string, FeatureDrift>;
  output: FeatureDrift | null;
  window_size: number;
  window_fill: number;
  pane_id: number;
  evaluated_at: number;
  drifted: boolean;
  drifted_features: string[];
  drift_share: number;
}

export interface PointStats {
  psi: number | null;
  js: number | null;
  ks: number | null;
  drifted: boolean;
}

export interface DriftPoint {
  at: number;
  pane_id: number;
  drift_share: number;
  drifted: boolean;
  features: Record<string, PointStats>;
  output: PointStats | null;
}

export interface Alarm {
  id: string;
  detected_at: number;
  events_seen: number;
  drifted_features: string[];
  output_drifted: boolean;
  drift_share: number;
}

export interface Thresholds {
  psi: number;
  js: number;
  ks: number;
}

export interface Shadow {
  run_id: string;
  candidate_version: number;
  n: number;
  mean_delta: number;
  lower: number;
  upper: number;
  min_delta: number;
  alpha: number;
  verdict: "continue" | "promote" | "reject";
}

export interface Run {
  id: string;
  model: string;
  state: LoopState;
  outcome: "promoted" | "rejected" | "failed" | "rolled_back" | null;
  reason: string | null;
  trigger: {
    kind: "drift" | "manual" | "schedule";
    reason: string;
    at: number;
    drift_event_id: string | null;
  };
  attached_triggers: number;
  started_at: number;
  finished_at: number | null;
  snapshot_id: string | null;
  candidate_version: number | null;
  transitions: { from: LoopState; to: LoopState; at: number; reason: string }[];
  stages: Partial<Record<LoopState, number>>;
  evidence: { holdout: Record<string, unknown> | null; shadow: Shadow | null };
  log_tail: string[];
}

export interface Version {
  name: string;
  version: number;
  status: "champion" | "candidate" | "archived" | "rejected";
  created_at: string;
  parent_version: number | null;
  dataset_id: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
  sha256: string;
  [field: string]: unknown;
}

export interface LineageNode {
  id: string;
  type: "model" | "dataset" | "run" | "drift_event";
  [field: string]: unknown;
}

export interface LineageEdge {
  source: string;
  target: string;
  kind: "parent" | "trained_on" | "produced" | "triggered";
}

export interface Lineage {
  model: string;
  versions: Version[];
  lineage: { nodes: LineageNode[]; edges: LineageEdge[] };
}

export interface MetricsPoint {
  at: number;
  requests_per_s: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  errors_per_s: number;
  observed: number;
  dropped: number;
  labelled: number;
}

/** The histories come from the server's database: the same story for every client, whenever
 * and wherever it connects. Oldest first, except `drift.alarms` (newest first); metrics
 * history has one point per 5 s (PROTOCOL.md, "On connect"). */
export interface Snapshot {
  model: string;
  state: State;
  drift: { report: Report | null; history: DriftPoint[]; alarms: Alarm[]; thresholds: Thresholds };
  runs: Run[];
  lineage: Lineage;
  traffic: { current: Traffic; history: TrafficPoint[]; shadow: Shadow | null };
  metrics: { history: MetricsPoint[] };
}

export interface LogLine {
  run_id: string;
  line: string;
  at: number;
}

interface Envelope<T extends string, D> {
  type: T;
  seq: number;
  at: number;
  data: D;
}

export type Frame =
  | Envelope<"snapshot", Snapshot>
  | Envelope<"drift", { point: DriftPoint | null; report: Report; alarms: Alarm[] }>
  | Envelope<"state", State>
  | Envelope<"run", Run>
  | Envelope<"log", LogLine>
  | Envelope<"lineage", Lineage>
  | Envelope<"traffic", { current: Traffic; point: TrafficPoint; shadow: Shadow | null }>
  | Envelope<"metrics", MetricsPoint>;

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
