import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { RetrainingPanel } from "../../src/panels/RetrainingPanel";
import { LOOP_STATES } from "../../src/protocol";
import { apply, delta, loadSnapshot } from "../helpers";

const active = () =>
  Array.from(document.querySelectorAll<SVGGElement>("[data-state]"))
    .filter((el) => el.dataset.active === "true")
    .map((el) => el.dataset.state);

describe("RetrainingPanel", () => {
  it("draws every state of the machine, none active before data", () => {
    render(<RetrainingPanel />);
    for (const state of LOOP_STATES) expect(document.querySelector(`[data-state="${state}"]`)).not.toBeNull();
    expect(active()).toEqual([]);
    expect(screen.getByText("no runs yet")).toBeTruthy();
  });

  it("highlights the live state and follows state deltas", () => {
    const snap = loadSnapshot();
    render(<RetrainingPanel />);
    expect(active()).toEqual(["IDLE"]);
    act(() => apply(delta("state", { ...snap.state, loop: { state: "TRAINING", run_id: "r-0003", cooldown_until: null } })));
    expect(active()).toEqual(["TRAINING"]);
  });

  it("lists runs with their stage durations and shows the live run's log as it grows", () => {
    const snap = loadSnapshot();
    render(<RetrainingPanel />);
    const row = screen.getByTestId("run-row-r-0002");
    expect(row.textContent).toContain("drift");
    expect(row.textContent).toContain("promoted");
    expect(row.textContent).toContain("training 3.2 s");
    expect(screen.getByTestId("run-log").textContent).toContain("holdout accuracy 0.84");

    const run = { ...snap.runs[0]!, id: "r-0003", state: "TRAINING" as const, outcome: null, finished_at: null, started_at: snap.runs[0]!.started_at + 3600, stages: { SNAPSHOTTING: 0.5 }, log_tail: [] };
    act(() => {
      apply(delta("run", run));
      apply(delta("state", { ...snap.state, loop: { state: "TRAINING", run_id: "r-0003", cooldown_until: null } }));
      apply(delta("log", { run_id: "r-0003", line: "epoch 1 loss 0.41", at: 1 }));
    });
    expect(screen.getByTestId("run-row-r-0003").textContent).toContain("running");
    expect(screen.getByTestId("run-log").textContent).toBe("epoch 1 loss 0.41");

    fireEvent.click(screen.getByTestId("run-row-r-0002"));
    expect(screen.getByTestId("run-log").textContent).toContain("holdout accuracy 0.84");
  });
});
