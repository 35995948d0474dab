import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TOKEN_KEY } from "../../src/api";
import { TrafficPanel } from "../../src/panels/TrafficPanel";
import { apply, delta, loadSnapshot } from "../helpers";

function respond(status: number, body: unknown) {
  const fetch = vi.fn(async () => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } }));
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("TrafficPanel", () => {
  it("shows the current shares and their history, and follows traffic deltas", () => {
    const snap = loadSnapshot();
    render(<TrafficPanel />);
    expect(screen.getByTestId("traffic-mode").textContent).toBe("shadow");
    expect(screen.getByTestId("traffic-share-champion").textContent).toBe("100.0 %");
    expect(screen.getByTestId("traffic-share-candidate").textContent).toBe("0.0 %");
    expect(screen.getByTestId("traffic-share-shadow").dataset.value).toBe("1");
    expect(screen.getByTestId("traffic-history-chart").dataset.pointCount).toBe(String(snap.traffic.history.length));
    expect(screen.getByText("no shadow evaluation running")).toBeTruthy();

    const current = { mode: "canary" as const, weight: 0.1, shadow_fraction: 0, shares: { champion: 0.9, candidate: 0.1, shadow: 0 } };
    const shadow = { run_id: "r-0003", candidate_version: 3, n: 420, mean_delta: 0.21, lower: 0.15, upper: 0.27, min_delta: 0.01, alpha: 0.05, verdict: "promote" as const };
    act(() => apply(delta("traffic", { current, point: { ...current, at: 2e9 }, shadow })));
    expect(screen.getByTestId("traffic-mode").textContent).toBe("canary");
    expect(screen.getByTestId("traffic-share-candidate").textContent).toBe("10.0 %");
    expect(screen.getByTestId("traffic-history-chart").dataset.pointCount).toBe(String(snap.traffic.history.length + 1));
    expect(screen.getByTestId("shadow-interval").dataset.verdict).toBe("promote");
  });

  it("says there is no interval yet while the shadow evaluation has no labelled pair", () => {
    loadSnapshot();
    render(<TrafficPanel />);
    const current = { mode: "shadow" as const, weight: 0, shadow_fraction: 1, shares: { champion: 1, candidate: 0, shadow: 1 } };
    // What the server sends at n = 0: no mean and no bounds (PROTOCOL.md: Shadow).
    const shadow = { run_id: "r-0003", candidate_version: 3, n: 0, mean_delta: null, lower: null, upper: null, min_delta: 0.01, alpha: 0.05, verdict: "continue" as const };
    act(() => apply(delta("traffic", { current, point: { ...current, at: 2e9 }, shadow })));
    const figure = screen.getByTestId("shadow-interval");
    expect(figure.textContent).toContain("no paired labels yet");
    expect(figure.querySelector("svg")).toBeNull();
  });

  it("keeps admin controls disabled until a token is entered, and remembers it for the session", () => {
    loadSnapshot();
    render(<TrafficPanel />);
    const retrain = screen.getByTestId("admin-retrain") as HTMLButtonElement;
    expect(retrain.closest("fieldset")?.disabled).toBe(true);
    fireEvent.change(screen.getByTestId("admin-token"), { target: { value: "s3cret" } });
    expect(retrain.closest("fieldset")?.disabled).toBe(false);
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe("s3cret");
    // No candidate in the fixture: nothing to promote.
    expect((screen.getByTestId("admin-promote") as HTMLButtonElement).disabled).toBe(true);
  });

  it("sends the token and shows the server's answer", async () => {
    sessionStorage.setItem(TOKEN_KEY, "s3cret");
    loadSnapshot();
    render(<TrafficPanel />);
    const fetch = respond(202, { run_id: "r-0009", attached: false });
    fireEvent.click(screen.getByTestId("admin-retrain"));
    await waitFor(() => expect(screen.getByTestId("admin-message").textContent).toBe("retrain started: r-0009"));
    const [path, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(path).toBe("/api/retrain");
    expect(new Headers(init.headers).get("Authorization")).toBe("Bearer s3cret");
  });

  it("shows the server's error message when an admin call fails", async () => {
    sessionStorage.setItem(TOKEN_KEY, "wrong");
    loadSnapshot();
    render(<TrafficPanel />);
    const fetch = respond(422, { error: { status: 422, message: "weight must be between 0 and 1", field: "weight" } });
    fireEvent.change(screen.getByTestId("admin-weight"), { target: { value: "7" } });
    fireEvent.click(screen.getByTestId("admin-apply-traffic"));
    await waitFor(() => expect(screen.getByTestId("admin-error").textContent).toBe("traffic failed: 422: weight must be between 0 and 1 (weight)"));
    const [path, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(path).toBe("/api/traffic");
    expect(init.method).toBe("PUT");
    expect(JSON.parse(String(init.body))).toEqual({ mode: "shadow", weight: 7, shadow_fraction: 1 });
  });
});
