import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const server = "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    // Served by driftloop itself (FastAPI static files at /).
    outDir: "../src/driftloop/serving/static",
    emptyOutDir: true,
  },
  server: {
    proxy: {
      "/ws": { target: server, ws: true },
      "/api": server,
    },
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./tests/setup.ts"],
    include: ["tests/**/*.test.{ts,tsx}"],
    // A busy machine: importing the lazily loaded panels alone can take seconds. The
    // tests wait for what they check, not for a fixed time.
    testTimeout: 60_000,
  },
});
