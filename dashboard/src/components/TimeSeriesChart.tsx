import { useEffect, useMemo, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { NoData } from "./NoData";

export interface SeriesSpec {
  label: string;
  values: (number | null)[];
  color: string;
  dashed?: boolean;
}

export interface TimeSeriesChartProps {
  /** Also names the chart for end-to-end tests, which read its data-point-count. */
  testId: string;
  title: string;
  /** Epoch seconds, ascending. */
  x: number[];
  /** Callers memoise this array: a new identity with the same labels only updates the data. */
  series: SeriesSpec[];
  height?: number;
  /** A sparkline: no axes, legend or cursor. */
  compact?: boolean;
  yRange?: [number, number];
  /** Values hold until the next point (a split changes at an instant; no slope between). */
  stepped?: boolean;
}

/** Distinct, stable colours for the i-th series (golden-angle hues). */
export function seriesColor(i: number): string {
  return `hsl(${Math.round((i * 137.508 + 210) % 360)}, 65%, 42%)`;
}

/** Half the x span, in seconds, shown around a single point. */
export const LONE_POINT_SPAN_S = 60;

/** The x range: uPlot's, except around a lone point, which uPlot widens by "a day" counted
 * in its time unit: 86 400 / 1e-3 s, so an axis from one year to the third after. */
export function timeRange(x: ArrayLike<number>, min: number, max: number): [number, number] {
  const only = x.length === 1 ? x[0] : undefined;
  return only === undefined ? [min, max] : [only - LONE_POINT_SPAN_S, only + LONE_POINT_SPAN_S];
}

/** Points are drawn only when there is no line to draw: a single value. */
function lonePoint(u: uPlot): boolean {
  return u.data[0].length === 1;
}

/** Outside a hover the legend shows the newest values (uPlot shows "--" without a cursor). */
function legendAtNewest(u: uPlot) {
  if (u.cursor.idx === null || u.cursor.idx === undefined) u.setLegend({ idx: u.data[0].length - 1 }, false);
}

/** What was drawn, on the canvas box, for tests and for anyone inspecting the page. */
function describeScale(u: uPlot, key: string) {
  if (key !== "x") return;
  const box = u.root.parentElement;
  const scale = u.scales.x;
  if (box === null || scale === undefined) return;
  box.dataset.xMin = String(scale.min);
  box.dataset.xMax = String(scale.max);
  box.dataset.points = lonePoint(u) ? "shown" : "hidden";
}

/** The one uPlot wrapper: a titled time series chart, or "no data yet" when there is none. */
export function TimeSeriesChart(props: TimeSeriesChartProps) {
  const { testId, title, x, compact = false } = props;
  return (
    <figure className={compact ? "chart chart-compact" : "chart"} data-testid={testId} data-point-count={x.length}>
      <figcaption>{title}</figcaption>
      {x.length === 0 ? <NoData /> : <Plot {...props} />}
    </figure>
  );
}

function Plot({ x, series, height = 220, compact = false, yRange, stepped = false }: TimeSeriesChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useMemo<uPlot.AlignedData>(() => [x, ...series.map((s) => s.values)], [x, series]);
  const layout = JSON.stringify([series.map((s) => [s.label, s.color, s.dashed]), height, compact, yRange, stepped]);

  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const width = () => Math.max(el.clientWidth, 200);
    const u = new uPlot(
      {
        width: width(),
        height,
        legend: { show: !compact },
        cursor: { show: !compact },
        scales: { x: { time: true, range: (u, min, max) => timeRange(u.data[0], min, max) }, y: yRange ? { range: yRange } : { auto: true } },
        axes: compact ? [{ show: false }, { show: false }] : [{}, { size: 56 }],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: compact ? 1 : 1.5,
            dash: s.dashed ? [6, 4] : undefined,
            points: { show: lonePoint, size: 7 },
            paths: stepped ? uPlot.paths.stepped?.({ align: 1 }) : undefined,
          })),
        ],
        hooks: {
          ready: [legendAtNewest],
          setData: [legendAtNewest],
          setCursor: [legendAtNewest],
          setScale: [describeScale],
        },
      },
      data,
      el,
    );
    plot.current = u;
    const onResize = () => u.setSize({ width: width(), height });
    window.addEventListener("resize", onResize);
    return () => {
      window.removeEventListener("resize", onResize);
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the layout changes (it captures this render's data); data changes
    // alone go through setData below.
  }, [layout]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return <div ref={box} className="chart-canvas" />;
}
