import { act, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../src/App";
import { PanelBoundary } from "../../src/components/PanelBoundary";
import type { Lineage } from "../../src/protocol";
import { useDashboard } from "../../src/store";
import { ServerSocket, snapshotFrame } from "../helpers";

// React reports caught render errors on the console; the boundary logs them too.
beforeEach(() => {
  vi.spyOn(console, "error").mockImplementation(() => undefined);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe("PanelBoundary", () => {
  it("shows the error in place of its panel, and renders it again on retry", () => {
    let broken = true;
    function Flaky() {
      if (broken) throw new Error("lineage is not an object");
      return <p>recovered</p>;
    }
    render(
      <PanelBoundary name="Lineage">
        <Flaky />
      </PanelBoundary>,
    );
    const error = screen.getByTestId("panel-error");
    expect(error.textContent).toContain("The Lineage panel failed");
    expect(error.textContent).toContain("lineage is not an object");
    broken = false;
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(screen.getByText("recovered")).toBeTruthy();
  });

  it("keeps the rest of the page alive when one panel throws", async () => {
    render(<App url="ws://test/ws" socketClass={ServerSocket} />);
    const socket = ServerSocket.last!;
    act(() => socket.onopen?.(new Event("open")));
    act(() => socket.onmessage?.(new MessageEvent("message", { data: JSON.stringify(snapshotFrame()) })));
    // A lineage the panel cannot draw (its graph is missing).
    act(() => useDashboard.setState({ lineage: { model: "demo", versions: [] } as unknown as Lineage }));

    fireEvent.click(screen.getByTestId("tab-lineage"));
    const error = await screen.findByTestId("panel-error");
    expect(error.textContent).toContain("The Lineage panel failed");
    // The header, the connection and the other panels still work.
    expect(screen.getByTestId("connection-status").dataset.status).toBe("open");
    fireEvent.click(screen.getByTestId("tab-overview"));
    expect(screen.queryByTestId("panel-error")).toBeNull();
    expect(screen.getByTestId("champion-version").textContent).toBe("v2");
  });
});
