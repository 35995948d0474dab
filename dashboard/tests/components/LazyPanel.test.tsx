import { act, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ServerSocket, snapshotFrame } from "../helpers";

afterEach(() => {
  vi.doUnmock("../../src/panels/LineagePanel");
  vi.restoreAllMocks();
});

describe("the lazily loaded Lineage panel", () => {
  it("says so when its code cannot be fetched, and loads it on retry", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.resetModules();
    // The server is down: the panel's chunk cannot be fetched.
    vi.doMock("../../src/panels/LineagePanel", () => {
      throw new TypeError("Failed to fetch dynamically imported module");
    });
    const { App } = await import("../../src/App");
    const { useDashboard } = await import("../../src/store");
    render(<App url="ws://test/ws" socketClass={ServerSocket} />);
    act(() => ServerSocket.last!.onopen?.(new Event("open")));
    act(() => useDashboard.getState().apply(snapshotFrame()));

    fireEvent.click(screen.getByTestId("tab-lineage"));
    expect((await screen.findByTestId("panel-error")).textContent).toContain("The Lineage panel failed");
    fireEvent.click(screen.getByRole("button", { name: "Try again" })); // still down
    expect((await screen.findByTestId("panel-error")).textContent).toContain("The Lineage panel failed");
    fireEvent.click(screen.getByTestId("tab-overview"));
    expect(screen.getByTestId("champion-version").textContent).toBe("v2");

    vi.doUnmock("../../src/panels/LineagePanel"); // the server is back
    fireEvent.click(screen.getByTestId("tab-lineage"));
    expect((await screen.findByTestId("lineage-version-count")).dataset.count).toBe("2");
  });
});
