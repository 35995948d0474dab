import { describe, expect, it } from "vitest";
import { type Frame, parseFrame } from "../src/protocol";
import { EMPTY, LIMITS, reduce, useDashboard } from "../src/store";
import { apply, delta, loadSnapshot, snapshotData, snapshotFrame } from "./helpers";

const store = () => useDashboard.getState();

describe("snapshot", () => {
  it("fills the store from the fixture", () => {
    const snap = loadSnapshot();
    const s = store();
    expect(s.synced).toBe(true);
    expect(s.model).toBe("demo");
    expect(s.state?.champion?.version).toBe(2);
    expect(s.drift.history).toHaveLength(snap.drift.history.length);
    expect(s.drift.thresholds).toEqual({ psi: 0.2, js: 0.1, ks: 0.1 });
    expect(s.runs.map((r) => r.id)).toEqual(["r-0002"]);
    expect(s.logs["r-0002"]).toEqual(snap.runs[0]?.log_tail);
    expect(s.lineage?.versions).toHaveLength(2);
    expect(s.traffic.current?.mode).toBe("shadow");
    expect(s.metrics).toHaveLength(snap.metrics.history.length);
  });

  it("replaces everything held before", () => {
    loadSnapshot();
    apply(delta("log", { run_id: "r-0002", line: "extra", at: 1 }));
    apply(delta("metrics", { ...snapshotData().metrics.history[0]!, at: 2e9 }));
    const data = snapshotData();
    data.runs = [];
    data.metrics.history = [];
    apply({ type: "snapshot", seq: 1, at: 0, data });
    expect(store().runs).toEqual([]);
    expect(store().logs).toEqual({});
    expect(store().metrics).toEqual([]);
  });

  it("trims histories longer than the client bounds", () => {
    const data = snapshotData();
    const point = data.drift.history[0]!;
    data.drift.history = Array.from({ length: LIMITS.driftPoints + 5 }, (_, i) => ({ ...point, pane_id: i }));
    apply({ type: "snapshot", seq: 1, at: 0, data });
    expect(store().drift.history).toHaveLength(LIMITS.driftPoints);
    expect(store().drift.history.at(-1)?.pane_id).toBe(LIMITS.driftPoints + 4);
  });
});

describe("deltas", () => {
  it("are ignored until a snapshot arrives, and again after a reconnect until the next one", () => {
    const metrics = snapshotData().metrics.history[0]!;
    apply(delta("metrics", metrics));
    expect(store().metrics).toEqual([]);
    loadSnapshot();
    store().expectSnapshot();
    const held = store().metrics.length;
    apply(delta("metrics", metrics));
    expect(store().metrics).toHaveLength(held);
    apply(snapshotFrame(1));
    apply(delta("metrics", metrics));
    expect(store().metrics).toHaveLength(held + 1);
  });

  it("drift appends the point, replaces the report and adds new alarms", () => {
    const snap = loadSnapshot();
    const point = { ...snap.drift.history.at(-1)!, pane_id: 13, at: 2e9 };
    const report = { ...snap.drift.report!, pane_id: 13 };
    const alarm = { ...snap.drift.alarms[0]!, id: "a-new", detected_at: 2e9 };
    apply(delta("drift", { point, report, alarms: [alarm] }));
    const d = store().drift;
    expect(d.history).toHaveLength(snap.drift.history.length + 1);
    expect(d.history.at(-1)?.pane_id).toBe(13);
    expect(d.report?.pane_id).toBe(13);
    expect(d.alarms.map((a) => a.id)).toEqual(["a-new", "a-7f3c"]);
  });

  it("an alarm-only drift frame (point null) adds the alarm and keeps the history", () => {
    const snap = loadSnapshot();
    const report = { ...snap.drift.report!, pane_id: 14 };
    const alarm = { ...snap.drift.alarms[0]!, id: "a-only", detected_at: 2e9 };
    apply(delta("drift", { point: null, report, alarms: [alarm] }));
    const d = store().drift;
    expect(d.history).toHaveLength(snap.drift.history.length);
    expect(d.alarms[0]?.id).toBe("a-only");
  });

  it("state replaces the state and the current traffic", () => {
    const snap = loadSnapshot();
    const traffic = { ...snap.state.traffic, mode: "canary" as const, weight: 0.1 };
    apply(delta("state", { ...snap.state, traffic, loop: { state: "TRAINING", run_id: "r-0003", cooldown_until: null } }));
    expect(store().state?.loop.state).toBe("TRAINING");
    expect(store().traffic.current?.mode).toBe("canary");
  });

  it("run upserts newest first and seeds the log tail of a new run", () => {
    const snap = loadSnapshot();
    const old = snap.runs[0]!;
    const fresh = { ...old, id: "r-0003", started_at: old.started_at + 3600, state: "TRAINING" as const, outcome: null, log_tail: ["start"] };
    apply(delta("run", fresh));
    apply(delta("run", { ...old, reason: "updated" }));
    expect(store().runs.map((r) => r.id)).toEqual(["r-0003", "r-0002"]);
    expect(store().runs[1]?.reason).toBe("updated");
    expect(store().logs["r-0003"]).toEqual(["start"]);
  });

  it("log appends to the run's tail, capped", () => {
    loadSnapshot();
    const before = store().logs["r-0002"]!.length;
    for (let i = 0; i < LIMITS.logLines + 10; i += 1) apply(delta("log", { run_id: "r-0002", line: `line ${i}`, at: i }));
    const tail = store().logs["r-0002"]!;
    expect(before).toBeLessThan(LIMITS.logLines);
    expect(tail).toHaveLength(LIMITS.logLines);
    expect(tail.at(-1)).toBe(`line ${LIMITS.logLines + 9}`);
  });

  it("lineage replaces the lineage; traffic replaces current and shadow and appends history", () => {
    const snap = loadSnapshot();
    apply(delta("lineage", { ...snap.lineage, versions: [] }));
    expect(store().lineage?.versions).toEqual([]);
    const current = { ...snap.traffic.current, mode: "ab" as const };
    const shadow = { run_id: "r-0003", candidate_version: 3, n: 10, mean_delta: 0.1, lower: -0.1, upper: 0.3, min_delta: 0.01, alpha: 0.05, verdict: "continue" as const };
    apply(delta("traffic", { current, point: { ...current, at: 2e9 }, shadow }));
    expect(store().traffic.current?.mode).toBe("ab");
    expect(store().traffic.shadow?.n).toBe(10);
    expect(store().traffic.history).toHaveLength(snap.traffic.history.length + 1);
  });

  it("metrics keep the newest points within the bound", () => {
    const snap = loadSnapshot();
    const point = snap.metrics.history[0]!;
    for (let i = 0; i < LIMITS.metricsPoints + 50; i += 1) apply(delta("metrics", { ...point, at: i }));
    expect(store().metrics).toHaveLength(LIMITS.metricsPoints);
    expect(store().metrics.at(-1)?.at).toBe(LIMITS.metricsPoints + 49);
  });
});

describe("unknown frames", () => {
  it("parseFrame drops unknown types, bad JSON and non-envelopes", () => {
    expect(parseFrame('{"type": "pong", "seq": 1, "at": 0, "data": {}}')).toBeNull();
    expect(parseFrame('{"type": "hologram", "seq": 1, "at": 0, "data": {}}')).toBeNull();
    expect(parseFrame("not json")).toBeNull();
    expect(parseFrame("[1, 2]")).toBeNull();
    expect(parseFrame('{"type": "state", "seq": 1, "at": 0}')).toBeNull();
    expect(parseFrame(JSON.stringify(snapshotFrame()))?.type).toBe("snapshot");
  });

  it("the reducer returns the data unchanged for a type it does not know", () => {
    const data = reduce(EMPTY, snapshotFrame());
    const unknown = { type: "hologram", seq: 9, at: 0, data: {} } as unknown as Frame;
    expect(reduce(data, unknown)).toBe(data);
  });
});
