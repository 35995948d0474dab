import { act, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { OverviewPanel } from "../../src/panels/OverviewPanel";
import { apply, delta, loadSnapshot } from "../helpers";

describe("OverviewPanel", () => {
  it("says there is no data before a snapshot", () => {
    render(<OverviewPanel />);
    expect(screen.getByTestId("champion-version").textContent).toBe("—");
    expect(screen.getByTestId("request-rate").textContent).toBe("—");
    expect(screen.getByTestId("request-rate-chart").dataset.pointCount).toBe("0");
    expect(screen.getByText("no data yet")).toBeTruthy();
  });

  it("shows the snapshot's figures and follows metrics and state deltas", () => {
    const snap = loadSnapshot();
    render(<OverviewPanel />);
    const last = snap.metrics.history.at(-1)!;
    expect(screen.getByTestId("champion-version").textContent).toBe("v2");
    expect(screen.getByTestId("candidate-version").textContent).toBe("none");
    expect(screen.getByTestId("loop-state").dataset.state).toBe("IDLE");
    expect(screen.getByTestId("open-alarms").textContent).toBe("1");
    expect(screen.getByTestId("request-rate").textContent).toBe(last.requests_per_s.toFixed(1));
    expect(screen.getByTestId("latency-p99").textContent).toBe(`${last.latency_p99_ms!.toFixed(1)} ms`);
    expect(screen.getByTestId("request-rate-chart").dataset.pointCount).toBe(String(snap.metrics.history.length));

    act(() => {
      apply(delta("metrics", { ...last, at: last.at + 1, requests_per_s: 321.04 }));
      apply(delta("state", { ...snap.state, candidate: { version: 3, queue_depth: 0 }, loop: { state: "SHADOWING", run_id: "r-0003", cooldown_until: null } }));
    });
    expect(screen.getByTestId("request-rate").textContent).toBe("321.0");
    expect(screen.getByTestId("candidate-version").textContent).toBe("v3");
    expect(screen.getByTestId("loop-state").textContent).toBe("SHADOWING");
  });

  it("warns while workers run a newer driftloop than the drift leader, and stops once none do", () => {
    const snap = loadSnapshot();
    render(<OverviewPanel />);
    expect(screen.queryByTestId("newer-format-warning")).toBeNull();

    act(() => apply(delta("state", { ...snap.state, newer_format_workers: { "host-b:41:9f8e": 3, "host-c:17:1a2b": 3 } })));
    const warning = screen.getByTestId("newer-format-warning");
    expect(warning.textContent).toBe("2 worker(s) run a newer driftloop: finish the rolling upgrade");
    expect(warning.title).toContain("host-b:41:9f8e: format 3");

    act(() => apply(delta("state", { ...snap.state, newer_format_workers: {} })));
    expect(screen.queryByTestId("newer-format-warning")).toBeNull();
  });
});
