import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { App } from "../../src/App";
import { ServerSocket, snapshotFrame } from "../helpers";

describe("App", () => {
  it("connects, shows the snapshot's figures and switches panels", () => {
    render(<App url="ws://test/ws" socketClass={ServerSocket} />);
    const status = screen.getByTestId("connection-status");
    expect(status.dataset.status).toBe("connecting");
    expect(screen.getByTestId("champion-version").textContent).toBe("—");

    const socket = ServerSocket.last!;
    act(() => socket.onopen?.(new Event("open")));
    expect(status.dataset.status).toBe("open");
    expect(screen.getByTestId("staleness").textContent).toContain("waiting for snapshot");

    act(() => socket.onmessage?.(new MessageEvent("message", { data: JSON.stringify(snapshotFrame()) })));
    expect(screen.getByTestId("champion-version").textContent).toBe("v2");
    expect(screen.getByTestId("staleness").dataset.stale).toBe("false");

    fireEvent.click(screen.getByTestId("tab-traffic"));
    expect(screen.getByTestId("panel-traffic")).toBeTruthy();
    expect(window.location.hash).toBe("#traffic");
    expect(screen.getByTestId("traffic-mode").textContent).toBe("shadow");

    act(() => socket.onclose?.(new CloseEvent("close")));
    expect(status.dataset.status).toBe("closed");
    // The last data stays on screen, marked by the status, rather than vanishing.
    expect(screen.getByTestId("traffic-mode").textContent).toBe("shadow");
  });
});
