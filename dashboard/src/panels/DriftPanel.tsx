import { useState } from "react";
import { NoData } from "../components/NoData";
import { fmtPercent, fmtTime } from "../format";
import type { Alarm, Report } from "../protocol";
import { useDashboard } from "../store";
import { DriftCharts } from "./drift/DriftCharts";
import { FeatureHistogram } from "./drift/FeatureHistogram";
import { FeatureTable } from "./drift/FeatureTable";

function ReportSummary({ report }: { report: Report }) {
  return (
    <p className="muted" data-testid="drift-summary">
      Pane {report.pane_id} evaluated {fmtTime(report.evaluated_at)} · window {report.window_size} ({fmtPercent(report.window_fill, 0)} full) ·
      drift share {fmtPercent(report.drift_share)} · drifted: {report.drifted_features.join(", ") || "none"}
      {report.output ? ` · model output ${report.output.drifted ? "drifted" : "stable"}` : ""}
    </p>
  );
}

function Alarms({ alarms }: { alarms: readonly Alarm[] }) {
  if (alarms.length === 0) return <NoData what="no alarms" />;
  return (
    <ul className="alarms" data-testid="alarm-list">
      {alarms.map((a) => (
        <li key={a.id}>
          {fmtTime(a.detected_at)}: {a.drifted_features.join(", ") || "—"}
          {a.output_drifted ? " + output" : ""} (share {fmtPercent(a.drift_share)}, after {a.events_seen} events)
        </li>
      ))}
    </ul>
  );
}

export function DriftPanel() {
  const { report, history, alarms, thresholds } = useDashboard((s) => s.drift);
  const [chosen, setChosen] = useState<string | null>(null);
  const features = report ? Object.values(report.features) : [];
  // Until a row is clicked, show the most drifted feature (first drifted, else first).
  const selected = chosen ?? report?.drifted_features[0] ?? features[0]?.name ?? null;
  const feature = selected === null ? undefined : report?.features[selected];

  return (
    <section className="panel">
      <DriftCharts history={history} thresholds={thresholds} />
      <h2>Latest evaluation</h2>
      {report ? <ReportSummary report={report} /> : <NoData />}
      <div className="split">
        {report && <FeatureTable features={features} selected={selected} onSelect={setChosen} />}
        {feature && <FeatureHistogram feature={feature} />}
      </div>
      <h2>Alarms</h2>
      <Alarms alarms={alarms} />
    </section>
  );
}
