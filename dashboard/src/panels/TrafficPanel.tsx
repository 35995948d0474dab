import { useMemo } from "react";
import { NoData } from "../components/NoData";
import { ShadowNotes } from "../components/ShadowNotes";
import { TimeSeriesChart, seriesColor } from "../components/TimeSeriesChart";
import { useDashboard } from "../store";
import { AdminControls } from "./traffic/AdminControls";
import { ShadowInterval } from "./traffic/ShadowInterval";
import { SLOTS, TrafficShares } from "./traffic/TrafficShares";

export function TrafficPanel() {
  const { current, history, shadow } = useDashboard((s) => s.traffic);
  const candidate = useDashboard((s) => s.state?.candidate?.version ?? null);
  const x = useMemo(() => history.map((p) => p.at), [history]);
  const series = useMemo(
    () => SLOTS.map((slot, i) => ({ label: slot, values: history.map((p) => p.shares[slot]), color: seriesColor(i) })),
    [history],
  );

  return (
    <section className="panel">
      <h2>Allocation</h2>
      {current ? <TrafficShares traffic={current} /> : <NoData />}
      <TimeSeriesChart testId="traffic-history-chart" title="Shares over time" x={x} series={series} height={180} yRange={[0, 1]} stepped />
      <h2>Shadow evidence</h2>
      {shadow ? (
        <>
          <ShadowInterval shadow={shadow} />
          <ShadowNotes shadow={shadow} />
        </>
      ) : (
        <NoData what="no shadow evaluation running" />
      )}
      <h2>Admin</h2>
      <AdminControls traffic={current} candidate={candidate} />
    </section>
  );
}
