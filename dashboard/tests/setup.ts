// Browser APIs jsdom lacks, stubbed for uPlot (canvas, Path2D, matchMedia) and React Flow
// (ResizeObserver, DOMMatrixReadOnly). The components themselves are never mocked.
import { cleanup, configure } from "@testing-library/react";
import { afterEach, beforeEach } from "vitest";
import { EMPTY, useDashboard } from "../src/store";

// findBy*/waitFor wait for what they look for; on a busy machine a lazily loaded panel can
// take seconds to import, so they may wait that long (they return as soon as it shows).
configure({ asyncUtilTimeout: 20_000 });

/** An object whose every unknown member is a function that does nothing (uPlot only draws). */
function inert<T extends object>(base: T): T {
  const noop = () => undefined;
  return new Proxy(base, {
    get(target, key) {
      if (key in target) return (target as Record<PropertyKey, unknown>)[key];
      if (key === "measureText") return () => ({ width: 0 });
      return noop;
    },
    set: () => true,
  });
}

class FakePath2D {
  constructor() {
    return inert(this);
  }
}
Object.defineProperty(window, "Path2D", { configurable: true, value: FakePath2D });

Object.defineProperty(HTMLCanvasElement.prototype, "getContext", {
  configurable: true,
  value(this: HTMLCanvasElement) {
    return inert({ canvas: this }) as unknown as CanvasRenderingContext2D;
  },
});

Object.defineProperty(window, "matchMedia", {
  configurable: true,
  value: (query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => undefined,
    removeListener: () => undefined,
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
    dispatchEvent: () => false,
  }),
});

class FakeResizeObserver {
  constructor(private readonly callback: ResizeObserverCallback) {}
  observe(target: Element) {
    this.callback([{ target } as ResizeObserverEntry], this as unknown as ResizeObserver);
  }
  unobserve() {}
  disconnect() {}
}
Object.defineProperty(window, "ResizeObserver", { configurable: true, value: FakeResizeObserver });

class FakeDOMMatrixReadOnly {
  m22: number;
  constructor(transform?: string) {
    const scale = transform?.match(/scale\(([\d.]+)\)/)?.[1];
    this.m22 = scale === undefined ? 1 : Number(scale);
  }
}
Object.defineProperty(window, "DOMMatrixReadOnly", { configurable: true, value: FakeDOMMatrixReadOnly });

beforeEach(() => {
  useDashboard.setState(EMPTY);
  sessionStorage.clear();
  window.history.replaceState(null, "", "/");
});

afterEach(() => {
  cleanup();
});
