#!/usr/bin/env node
// End-to-end check of the dashboard against a running driftloop server (e.g. `driftloop demo
// --headless`). Uses the system Chromium through playwright-core; never downloads a browser.
//
//   node e2e/dashboard.e2e.mjs --url http://127.0.0.1:8000 --screenshot out.png [--timeout 300]
//
// Checks, in order, printing one JSON line per check passed: the page connects; drift points
// arrive; the state diagram shows TRAINING active and later IDLE, COOLDOWN or PROMOTED; the
// lineage shows at least two model versions and a champion; the traffic panel shows the
// allocation. On the first failure it prints a JSON line with "ok": false to stderr, takes the
// screenshot and exits 1. Chromium: $CHROMIUM, else /usr/bin/chromium.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8000" },
    screenshot: { type: "string", default: "dashboard-e2e.png" },
    timeout: { type: "string", default: "300" },
  },
});
const timeoutMs = Number(opts.timeout) * 1000;
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
  console.error(`--timeout must be a positive number of seconds, got ${opts.timeout}`);
  process.exit(2);
}

const started = Date.now();
const deadline = started + timeoutMs;
const remaining = () => Math.max(1, deadline - Date.now());
const elapsed = () => Number(((Date.now() - started) / 1000).toFixed(1));

class CheckFailed extends Error {
  constructor(check, message) {
    super(message);
    this.check = check;
  }
}

/** Wait for `predicate(arg)` in the page to return a truthy value; fail the check with `message`. */
async function waitIn(page, check, message, predicate, arg) {
  try {
    const handle = await page.waitForFunction(predicate, arg, { timeout: remaining(), polling: 100 });
    return await handle.jsonValue();
  } catch (error) {
    throw new CheckFailed(check, `${message} (${error instanceof Error ? error.message.split("\n")[0] : error})`);
  }
}

function passed(check, details = {}) {
  console.log(JSON.stringify({ check, ok: true, elapsed_s: elapsed(), ...details }));
}

async function openTab(page, tab) {
  await page.getByTestId(`tab-${tab}`).click({ timeout: remaining() });
  await page.getByTestId(`panel-${tab}`).waitFor({ timeout: remaining() });
}

async function connects(page) {
  await page.goto(opts.url, { timeout: remaining(), waitUntil: "domcontentloaded" });
  await waitIn(page, "connected", "the connection status never became open", () =>
    document.querySelector('[data-testid="connection-status"]')?.getAttribute("data-status") === "open",
  );
  passed("connected");
}

async function driftPoints(page) {
  await openTab(page, "drift");
  const points = await waitIn(page, "drift_points", "no drift point reached the PSI chart", () => {
    const n = Number(document.querySelector('[data-testid="drift-chart-psi"]')?.getAttribute("data-point-count") ?? 0);
    return n > 0 ? n : null;
  });
  passed("drift_points", { points });
}

/** Records every active state of the diagram from now on (attribute changes, not polling). */
function recordLoopStates() {
  const seen = [];
  const note = () => {
    const state = document.querySelector('[data-testid="state-diagram"] [data-active="true"]')?.getAttribute("data-state");
    if (state && seen.at(-1) !== state) seen.push(state);
  };
  note();
  new MutationObserver(note).observe(document.querySelector('[data-testid="state-diagram"]'), {
    subtree: true,
    attributes: true,
    attributeFilter: ["data-active"],
  });
  window.__loopStates = seen;
}

async function trainingCycle(page) {
  await openTab(page, "retraining");
  await page.getByTestId("state-diagram").waitFor({ timeout: remaining() });
  await page.evaluate(recordLoopStates);
  const after = ["IDLE", "COOLDOWN", "PROMOTED"];
  try {
    const states = await waitIn(
      page,
      "training_cycle",
      "the state diagram never showed TRAINING followed by IDLE, COOLDOWN or PROMOTED",
      (after) => {
        const seen = window.__loopStates;
        const training = seen.indexOf("TRAINING");
        return training >= 0 && seen.slice(training + 1).some((s) => after.includes(s)) ? seen : null;
      },
      after,
    );
    passed("training_cycle", { states });
  } catch (error) {
    const seen = await page.evaluate(() => window.__loopStates).catch(() => []);
    throw new CheckFailed("training_cycle", `${error.message}; active states seen: ${JSON.stringify(seen)}`);
  }
}

async function lineage(page) {
  await openTab(page, "lineage");
  const found = await waitIn(page, "lineage", "the lineage never showed two model versions with a champion", () => {
    const models = [...document.querySelectorAll('[data-testid^="lineage-node-"][data-node-type="model"]')];
    const champion = models.find((m) => m.getAttribute("data-status") === "champion");
    if (models.length < 2 || !champion) return null;
    return {
      versions: Number(document.querySelector('[data-testid="lineage-version-count"]')?.getAttribute("data-count")),
      model_nodes: models.map((m) => m.getAttribute("data-testid").replace("lineage-node-", "")),
      champion: champion.getAttribute("data-testid").replace("lineage-node-", ""),
    };
  });
  passed("lineage", found);
}

async function traffic(page) {
  await openTab(page, "traffic");
  const allocation = await waitIn(page, "traffic", "the traffic panel never showed the allocation", () => {
    const share = (slot) => document.querySelector(`[data-testid="traffic-share-${slot}"]`)?.getAttribute("data-value");
    const shares = { champion: share("champion"), candidate: share("candidate"), shadow: share("shadow") };
    if (Object.values(shares).some((v) => v === null || v === undefined || Number.isNaN(Number(v)))) return null;
    return {
      mode: document.querySelector('[data-testid="traffic-mode"]')?.textContent,
      shares: Object.fromEntries(Object.entries(shares).map(([k, v]) => [k, Number(v)])),
    };
  });
  passed("traffic", allocation);
}

async function screenshot(page) {
  try {
    await page.screenshot({ path: opts.screenshot, fullPage: true, timeout: 15_000 });
    return opts.screenshot;
  } catch (error) {
    console.error(`screenshot failed: ${error instanceof Error ? error.message : error}`);
    return null;
  }
}

const profile = mkdtempSync(join(tmpdir(), "driftloop-e2e-"));
const pageErrors = [];
let context;
let status = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 1000 },
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (error) => pageErrors.push(error.message));
  try {
    for (const check of [connects, driftPoints, trainingCycle, lineage, traffic]) await check(page);
    const path = await screenshot(page);
    console.log(JSON.stringify({ check: "screenshot", ok: path !== null, path, elapsed_s: elapsed() }));
  } catch (error) {
    status = 1;
    const path = await screenshot(page);
    console.error(
      JSON.stringify({
        check: error instanceof CheckFailed ? error.check : "unexpected",
        ok: false,
        error: error instanceof Error ? error.message : String(error),
        elapsed_s: elapsed(),
        screenshot: path,
        page_errors: pageErrors,
      }),
    );
  }
} catch (error) {
  status = 1;
  console.error(JSON.stringify({ check: "launch", ok: false, error: error instanceof Error ? error.message : String(error) }));
} finally {
  await context?.close().catch(() => undefined);
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
