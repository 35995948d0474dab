import { useMemo } from "react";
import { Stat } from "../components/Stat";
import { TimeSeriesChart, seriesColor } from "../components/TimeSeriesChart";
import { fmtNumber, fmtPercent, fmtTime } from "../format";
import type { Slot } from "../protocol";
import { useDashboard } from "../store";

/** "—" before any state arrived, "none" when the server says there is no such model. */
function version(loaded: boolean, slot: Slot | null | undefined): string {
  if (!loaded) return "—";
  return slot ? `v${slot.version}` : "none";
}

export function OverviewPanel() {
  const state = useDashboard((s) => s.state);
  const metrics = useDashboard((s) => s.metrics);
  const report = useDashboard((s) => s.drift.report);
  const latest = metrics.at(-1);
  const loaded = state !== null;
  const newer = Object.entries(state?.newer_format_workers ?? {});

  const x = useMemo(() => metrics.map((m) => m.at), [metrics]);
  const series = useMemo(
    () => [{ label: "requests/s", values: metrics.map((m) => m.requests_per_s), color: seriesColor(0) }],
    [metrics],
  );

  return (
    <section className="panel">
      {newer.length > 0 && (
        <p className="warning" data-testid="newer-format-warning" title={newer.map(([worker, version]) => `${worker}: format ${version}`).join(", ")}>
          {newer.length} worker(s) run a newer driftloop: finish the rolling upgrade
        </p>
      )}
      <div className="stats">
        <Stat label="Champion" testId="champion-version" value={version(loaded, state?.champion)} />
        <Stat label="Candidate" testId="candidate-version" value={version(loaded, state?.candidate)} />
        <Stat
          label="Loop state"
          value={
            <span className={`loop-state loop-${state?.loop.state ?? "unknown"}`} data-testid="loop-state" data-state={state?.loop.state ?? ""}>
              {state?.loop.state ?? "—"}
            </span>
          }
        />
        <Stat label="Open alarms" testId="open-alarms" value={state ? String(state.alarms) : "—"} />
        <Stat label="Requests/s" testId="request-rate" value={fmtNumber(latest?.requests_per_s, 1)} />
        <Stat label="Latency p50" testId="latency-p50" value={latest ? `${fmtNumber(latest.latency_p50_ms, 1)} ms` : "—"} />
        <Stat label="Latency p99" testId="latency-p99" value={latest ? `${fmtNumber(latest.latency_p99_ms, 1)} ms` : "—"} />
        <Stat label="Errors/s" testId="error-rate" value={fmtNumber(latest?.errors_per_s, 2)} />
        <Stat label="Drift share" testId="drift-share" value={fmtPercent(report?.drift_share)} />
        <Stat label="Last evaluation" value={fmtTime(report?.evaluated_at)} />
      </div>
      <TimeSeriesChart testId="request-rate-chart" title="Request rate" x={x} series={series} height={60} compact />
      {latest && (
        <p className="muted">
          {latest.observed} observed · {latest.labelled} labelled · {latest.dropped} dropped observations · generation{" "}
          {state?.generation ?? "—"}
        </p>
      )}
    </section>
  );
}
