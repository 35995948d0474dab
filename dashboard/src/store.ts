import { create } from "zustand";
import type {
  Alarm,
  DriftPoint,
  Frame,
  Lineage,
  MetricsPoint,
  Report,
  Run,
  Shadow,
  State,
  Thresholds,
  Traffic,
  TrafficPoint,
} from "./protocol";

/** Client-side bounds: the dashboard never grows without limit on a long-running server. */
export const LIMITS = {
  driftPoints: 2000,
  metricsPoints: 3600,
  trafficPoints: 3600,
  runs: 20,
  alarms: 50,
  logLines: 200,
} as const;

export interface DashboardData {
  /** True once this connection delivered its snapshot; deltas before it are ignored. */
  synced: boolean;
  model: string | null;
  state: State | null;
  drift: {
    report: Report | null;
    history: DriftPoint[];
    alarms: Alarm[];
    thresholds: Thresholds | null;
  };
  /** Newest first. */
  runs: Run[];
  /** Trainer log tail per run id: seeded from Run.log_tail, extended by `log` deltas. */
  logs: Record<string, string[]>;
  lineage: Lineage | null;
  traffic: { current: Traffic | null; history: TrafficPoint[]; shadow: Shadow | null };
  metrics: MetricsPoint[];
}

export const EMPTY: DashboardData = {
  synced: false,
  model: null,
  state: null,
  drift: { report: null, history: [], alarms: [], thresholds: null },
  runs: [],
  logs: {},
  lineage: null,
  traffic: { current: null, history: [], shadow: null },
  metrics: [],
};

function last<T>(items: readonly T[], limit: number): T[] {
  return items.length > limit ? items.slice(items.length - limit) : [...items];
}

function append<T>(items: readonly T[], item: T, limit: number): T[] {
  return last([...items, item], limit);
}

function upsertRun(runs: readonly Run[], run: Run): Run[] {
  const others = runs.filter((r) => r.id !== run.id);
  return [run, ...others].sort((a, b) => b.started_at - a.started_at).slice(0, LIMITS.runs);
}

/** New alarms join the list by id (a `drift` delta carries the alarms it raised). */
function mergeAlarms(alarms: readonly Alarm[], incoming: readonly Alarm[]): Alarm[] {
  const byId = new Map(alarms.map((a) => [a.id, a]));
  for (const alarm of incoming) byId.set(alarm.id, alarm);
  return [...byId.values()].sort((a, b) => b.detected_at - a.detected_at).slice(0, LIMITS.alarms);
}

/** Keep the tails of the runs still listed; seed a run's tail from the server's when unseen. */
function syncLogs(logs: Record<string, string[]>, runs: readonly Run[]): Record<string, string[]> {
  return Object.fromEntries(runs.map((r) => [r.id, logs[r.id] ?? last(r.log_tail ?? [], LIMITS.logLines)]));
}

/** The pure transition: data after one frame. */
export function reduce(data: DashboardData, frame: Frame): DashboardData {
  if (frame.type === "snapshot") {
    const s = frame.data;
    const runs = s.runs.slice(0, LIMITS.runs);
    return {
      synced: true,
      model: s.model,
      state: s.state,
      drift: {
        report: s.drift.report,
        history: last(s.drift.history, LIMITS.driftPoints),
        alarms: mergeAlarms([], s.drift.alarms),
        thresholds: s.drift.thresholds,
      },
      runs,
      logs: syncLogs({}, runs),
      lineage: s.lineage,
      traffic: {
        current: s.traffic.current,
        history: last(s.traffic.history, LIMITS.trafficPoints),
        shadow: s.traffic.shadow,
      },
      metrics: last(s.metrics.history, LIMITS.metricsPoints),
    };
  }
  if (!data.synced) return data;
  switch (frame.type) {
    case "drift":
      return {
        ...data,
        drift: {
          ...data.drift,
          report: frame.data.report,
          history: frame.data.point
            ? append(data.drift.history, frame.data.point, LIMITS.driftPoints)
            : data.drift.history,
          alarms: mergeAlarms(data.drift.alarms, frame.data.alarms),
        },
      };
    case "state":
      return { ...data, state: frame.data, traffic: { ...data.traffic, current: frame.data.traffic } };
    case "run": {
      const runs = upsertRun(data.runs, frame.data);
      return { ...data, runs, logs: syncLogs(data.logs, runs) };
    }
    case "log": {
      const { run_id, line } = frame.data;
      const tail = append(data.logs[run_id] ?? [], line, LIMITS.logLines);
      return { ...data, logs: { ...data.logs, [run_id]: tail } };
    }
    case "lineage":
      return { ...data, lineage: frame.data };
    case "traffic":
      return {
        ...data,
        traffic: {
          current: frame.data.current,
          history: append(data.traffic.history, frame.data.point, LIMITS.trafficPoints),
          shadow: frame.data.shadow,
        },
      };
    case "metrics":
      return { ...data, metrics: append(data.metrics, frame.data, LIMITS.metricsPoints) };
    default:
      return data; // a type this dashboard does not know (a newer server): ignored
  }
}

interface Actions {
  apply: (frame: Frame) => void;
  /** A new connection opened: hold deltas until its snapshot arrives. */
  expectSnapshot: () => void;
}

export const useDashboard = create<DashboardData & Actions>()((set) => ({
  ...EMPTY,
  apply: (frame) => set((s) => reduce(s, frame)),
  expectSnapshot: () => set({ synced: false }),
}));
