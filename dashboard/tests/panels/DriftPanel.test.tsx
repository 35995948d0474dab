import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { DriftPanel } from "../../src/panels/DriftPanel";
import { apply, delta, loadSnapshot } from "../helpers";

const rowNames = () =>
  within(screen.getByTestId("feature-table"))
    .getAllByRole("row")
    .slice(1)
    .map((row) => row.dataset.testid?.replace("feature-row-", ""));

describe("DriftPanel", () => {
  it("shows empty charts and no table before data", () => {
    render(<DriftPanel />);
    for (const stat of ["psi", "js", "ks"]) expect(screen.getByTestId(`drift-chart-${stat}`).dataset.pointCount).toBe("0");
    expect(screen.queryByTestId("feature-table")).toBeNull();
  });

  it("charts every statistic, highlights drifted features and sorts by a clicked statistic", () => {
    const snap = loadSnapshot();
    render(<DriftPanel />);
    for (const stat of ["psi", "js", "ks"]) {
      expect(screen.getByTestId(`drift-chart-${stat}`).dataset.pointCount).toBe(String(snap.drift.history.length));
    }
    expect(screen.getByTestId("feature-row-age").dataset.drifted).toBe("true");
    expect(screen.getByTestId("feature-row-age").className).toContain("drifted");
    expect(screen.getByTestId("feature-row-education").dataset.drifted).toBe("false");

    // PSI descending by default: age (drifted) first.
    expect(rowNames()[0]).toBe("age");
    fireEvent.click(screen.getByTestId("sort-psi"));
    expect(rowNames().at(-1)).toBe("age");
    // KS: the categorical feature has none and sorts last either way.
    fireEvent.click(screen.getByTestId("sort-ks"));
    expect(rowNames()).toEqual(["age", "hours_per_week", "capital_gain", "education"]);
  });

  it("draws reference vs live shares for the chosen feature", () => {
    const snap = loadSnapshot();
    render(<DriftPanel />);
    expect(screen.getByTestId("feature-histogram").dataset.feature).toBe("age");
    fireEvent.click(screen.getByTestId("feature-row-education"));
    const histogram = screen.getByTestId("feature-histogram");
    expect(histogram.dataset.feature).toBe("education");
    expect(within(histogram).getAllByTestId("histogram-bin")).toHaveLength(snap.drift.report!.features.education!.bins.length);
  });

  it("adds a point to every chart when a drift delta arrives", () => {
    const snap = loadSnapshot();
    render(<DriftPanel />);
    const point = { ...snap.drift.history.at(-1)!, at: snap.drift.history.at(-1)!.at + 60, pane_id: 13 };
    act(() => apply(delta("drift", { point, report: snap.drift.report!, alarms: [] })));
    expect(screen.getByTestId("drift-chart-psi").dataset.pointCount).toBe(String(snap.drift.history.length + 1));
  });
});
