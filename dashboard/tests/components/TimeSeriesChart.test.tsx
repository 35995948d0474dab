import { act, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { TimeSeriesChart } from "../../src/components/TimeSeriesChart";

const AT = 1_764_230_400; // 2025-11-27T08:00:00Z

/** Render a chart and let uPlot commit its first draw (a microtask after construction). */
async function chart(x: number[], values: number[]) {
  render(
    <TimeSeriesChart
      testId="chart"
      title="PSI"
      x={x}
      series={[{ label: "age", values, color: "#123456" }]}
    />,
  );
  await act(async () => undefined);
  const canvas = screen.getByTestId("chart").querySelector<HTMLElement>(".chart-canvas")!;
  return {
    range: [Number(canvas.dataset.xMin), Number(canvas.dataset.xMax)] as const,
    legend: [...screen.getByTestId("chart").querySelectorAll(".u-legend .u-value")].map((v) => v.textContent),
    points: canvas.dataset.points,
  };
}

describe("TimeSeriesChart", () => {
  it("draws one point as a point, on a time axis around it", async () => {
    const { range, legend, points } = await chart([AT], [0.25]);
    // A minute either side, not the years uPlot picks for a zero-width range.
    expect(range[0]).toBeLessThan(AT);
    expect(range[1]).toBeGreaterThan(AT);
    expect(range[1] - range[0]).toBeLessThanOrEqual(600);
    expect(points).toBe("shown");
    // The legend shows the newest value, not "--", while no cursor hovers.
    expect(legend).toContain("0.25");
  });

  it("keeps the data's own range and a line once there are several points", async () => {
    const { range, legend, points } = await chart([AT, AT + 10, AT + 20], [0.1, 0.2, 0.3]);
    expect(range).toEqual([AT, AT + 20]);
    expect(points).toBe("hidden");
    expect(legend).toContain("0.3");
  });
});
