import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_DELAY_MS, MIN_DELAY_MS, type SocketLike, backoffDelay, useReconnectingSocket } from "../src/useReconnectingSocket";

/** Records every socket the hook opens; tests drive its events by hand. */
class FakeSocket implements SocketLike {
  static made: FakeSocket[] = [];
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.made.push(this);
  }
  close() {
    this.closed = true;
  }
  open() {
    act(() => this.onopen?.(new Event("open")));
  }
  receive(text: string) {
    act(() => this.onmessage?.(new MessageEvent("message", { data: text })));
  }
  drop() {
    act(() => this.onclose?.(new CloseEvent("close")));
  }
}

const latest = () => FakeSocket.made.at(-1)!;

function mount(onMessage = vi.fn(), onOpen = vi.fn()) {
  // random() = 1: every wait is the full ceiling, so the schedule is exact.
  const hook = renderHook(() => useReconnectingSocket({ url: "ws://test/ws", onMessage, onOpen, socketClass: FakeSocket, random: () => 1 }));
  return { hook, onMessage, onOpen };
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.made = [];
});

afterEach(() => {
  vi.useRealTimers();
});

describe("backoffDelay", () => {
  it("doubles from 0.5 s to a 10 s cap, jittered within [ceiling/2, ceiling]", () => {
    expect([0, 1, 2, 3, 4, 5, 9].map((n) => backoffDelay(n, () => 1))).toEqual([500, 1000, 2000, 4000, 8000, MAX_DELAY_MS, MAX_DELAY_MS]);
    expect(backoffDelay(0, () => 0)).toBe(MIN_DELAY_MS / 2);
    expect(backoffDelay(20, () => 0)).toBe(MAX_DELAY_MS / 2);
    for (let i = 0; i < 50; i += 1) {
      const d = backoffDelay(3);
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });
});

describe("useReconnectingSocket", () => {
  it("connects, reports open, and forwards messages with their arrival time", () => {
    vi.setSystemTime(1_000_000);
    const { hook, onMessage, onOpen } = mount();
    expect(hook.result.current.status).toBe("connecting");
    expect(latest().url).toBe("ws://test/ws");
    latest().open();
    expect(hook.result.current.status).toBe("open");
    expect(onOpen).toHaveBeenCalledTimes(1);
    latest().receive('{"type":"metrics"}');
    expect(onMessage).toHaveBeenCalledWith('{"type":"metrics"}');
    expect(hook.result.current.lastMessageAt).toBe(1_000_000);
  });

  it("reconnects with growing delays while the server stays away", () => {
    const { hook } = mount();
    for (const wait of [500, 1000, 2000, 4000, 8000, 10_000, 10_000]) {
      const count = FakeSocket.made.length;
      latest().drop();
      expect(hook.result.current.status).toBe("closed");
      act(() => vi.advanceTimersByTime(wait - 1));
      expect(FakeSocket.made).toHaveLength(count);
      act(() => vi.advanceTimersByTime(1));
      expect(FakeSocket.made).toHaveLength(count + 1);
      expect(hook.result.current.status).toBe("connecting");
    }
  });

  it("resets the backoff after a connection opened", () => {
    mount();
    latest().drop();
    act(() => vi.advanceTimersByTime(500));
    latest().drop();
    act(() => vi.advanceTimersByTime(1000));
    latest().open();
    const count = FakeSocket.made.length;
    latest().drop();
    act(() => vi.advanceTimersByTime(500));
    expect(FakeSocket.made).toHaveLength(count + 1);
  });

  it("retries when the constructor itself throws", () => {
    let fail = true;
    class Flaky extends FakeSocket {
      constructor(url: string) {
        if (fail) throw new Error("bad url");
        super(url);
      }
    }
    const hook = renderHook(() => useReconnectingSocket({ url: "ws://x", onMessage: vi.fn(), socketClass: Flaky, random: () => 1 }));
    expect(hook.result.current.status).toBe("closed");
    fail = false;
    act(() => vi.advanceTimersByTime(500));
    expect(FakeSocket.made).toHaveLength(1);
  });

  it("closes the socket and stops reconnecting on unmount", () => {
    const { hook } = mount();
    const socket = latest();
    socket.open();
    hook.unmount();
    expect(socket.closed).toBe(true);
    socket.onclose?.(new CloseEvent("close"));
    act(() => vi.advanceTimersByTime(60_000));
    expect(FakeSocket.made).toHaveLength(1);
  });

  it("cancels a pending retry on unmount", () => {
    const { hook } = mount();
    latest().drop();
    hook.unmount();
    act(() => vi.advanceTimersByTime(60_000));
    expect(FakeSocket.made).toHaveLength(1);
  });
});
