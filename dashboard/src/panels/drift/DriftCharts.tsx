import { useMemo } from "react";
import { type SeriesSpec, TimeSeriesChart, seriesColor } from "../../components/TimeSeriesChart";
import type { DriftPoint, Thresholds } from "../../protocol";

export const STATISTICS = [
  { key: "psi", title: "PSI" },
  { key: "js", title: "Jensen–Shannon distance" },
  { key: "ks", title: "KS statistic" },
] as const;
export type Statistic = (typeof STATISTICS)[number]["key"];

/** Every feature seen in the history, in order of first appearance (stable colours). */
function featureNames(history: readonly DriftPoint[]): string[] {
  const names = new Set<string>();
  for (const point of history) for (const name of Object.keys(point.features)) names.add(name);
  return [...names];
}

function statSeries(history: readonly DriftPoint[], names: string[], stat: Statistic, threshold: number | null): SeriesSpec[] {
  const series: SeriesSpec[] = names.map((name, i) => ({
    label: name,
    values: history.map((p) => p.features[name]?.[stat] ?? null),
    color: seriesColor(i),
  }));
  if (threshold !== null) {
    series.push({ label: `threshold ${threshold}`, values: history.map(() => threshold), color: "#c0392b", dashed: true });
  }
  return series;
}

function StatChart({ stat, title, x, history, names, threshold }: {
  stat: Statistic;
  title: string;
  x: number[];
  history: readonly DriftPoint[];
  names: string[];
  threshold: number | null;
}) {
  const series = useMemo(() => statSeries(history, names, stat, threshold), [history, names, stat, threshold]);
  return <TimeSeriesChart testId={`drift-chart-${stat}`} title={title} x={x} series={series} height={200} />;
}

/** One chart per statistic, one series per feature, the alarm threshold dashed. */
export function DriftCharts({ history, thresholds }: { history: readonly DriftPoint[]; thresholds: Thresholds | null }) {
  const x = useMemo(() => history.map((p) => p.at), [history]);
  const names = useMemo(() => featureNames(history), [history]);
  return (
    <div className="chart-grid">
      {STATISTICS.map(({ key, title }) => (
        <StatChart key={key} stat={key} title={title} x={x} history={history} names={names} threshold={thresholds?.[key] ?? null} />
      ))}
    </div>
  );
}
