import { act, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { RetrainingPanel } from "../../src/panels/RetrainingPanel";
import { TrafficPanel } from "../../src/panels/TrafficPanel";
import type { Run } from "../../src/protocol";
import { apply, delta, labelShareRunFrame, loadSnapshot } from "../helpers";

function shadowingRun(): Run {
  const frame = labelShareRunFrame();
  if (frame.type !== "run") throw new Error("the fixture is a run frame");
  return frame.data;
}

function expectLabelShare() {
  const share = screen.getByTestId("label-share");
  expect(share.dataset.diverging).toBe("true");
  expect(screen.getByTestId("label-share-benign").textContent).toBe("benign: 95.0 % labelled");
  expect(screen.getByTestId("label-share-malignant").textContent).toBe("malignant: 55.0 % labelled");
  expect(screen.getByText(/diverging \(p = 1\.6e-23\)/)).toBeTruthy();
  const [warning] = screen.getAllByTestId("shadow-warning");
  expect(warning?.textContent).toContain("set label_horizon longer than the slowest label");
}

describe("ShadowNotes", () => {
  it("shows the run's shadow warnings and its labelled share by predicted class", () => {
    const snap = loadSnapshot();
    render(<RetrainingPanel />);
    expect(screen.queryByTestId("shadow-notes")).toBeNull(); // the fixture's run predates them
    act(() => {
      apply(labelShareRunFrame());
      apply(delta("state", { ...snap.state, loop: { state: "SHADOWING", run_id: "r-0003", cooldown_until: null } }));
    });
    expectLabelShare();
  });

  it("shows them under the live shadow interval too", () => {
    loadSnapshot();
    render(<TrafficPanel />);
    const run = shadowingRun();
    const current = { mode: "shadow" as const, weight: 0, shadow_fraction: 1, shares: { champion: 1, candidate: 0, shadow: 1 } };
    act(() => apply(delta("traffic", { current, point: { ...current, at: 2e9 }, shadow: { ...run.evidence.shadow!, run_id: run.id } })));
    expect(screen.getByTestId("shadow-interval").dataset.verdict).toBe("continue");
    expectLabelShare();
  });
});
