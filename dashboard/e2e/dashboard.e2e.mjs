#!/usr/bin/env node
// End-to-end check of the dashboard against a running driftloop server (e.g. `driftloop demo
// --headless`). Uses the system Chromium through playwright-core; never downloads a browser.
//
//   node e2e/dashboard.e2e.mjs --url http://127.0.0.1:8000 --screenshots out/ [--timeout 300]
//
// Two pages: one watches live from the start, the other is a late visitor that reloads.
// Checks, in order, printing one JSON line per check passed: the live page connects; drift
// points arrive; the late visitor sees the alarm, reloads, and still shows the drift history
// (at least three evaluations), the alarm and the latest report; the live page's state diagram
// shows TRAINING active and later IDLE, COOLDOWN or PROMOTED; the late visitor sees a new
// champion, reloads, and still shows the drift history, the alarm and the lineage (two
// versions, the new champion); the live lineage shows at least two model versions and a
// champion; the traffic panel shows the allocation. After each reload every panel is
// screenshotted (<stage>-<tab>.png), and the live page at the end (live.png). On the first
// failure it prints a JSON line with "ok": false to stderr, takes the screenshots and exits 1.
// Chromium: $CHROMIUM, else /usr/bin/chromium.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8000" },
    screenshots: { type: "string", default: "dashboard-e2e" },
    timeout: { type: "string", default: "300" },
  },
});
const timeoutMs = Number(opts.timeout) * 1000;
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
  console.error(`--timeout must be a positive number of seconds, got ${opts.timeout}`);
  process.exit(2);
}

const TABS = ["overview", "drift", "retraining", "lineage", "traffic"];
/** After a reload the history must come with the snapshot, not trickle in as live points:
 * in this long the demo closes at most two panes. */
const RELOAD_MS = 10_000;

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
async function waitIn(page, check, message, predicate, arg, timeout = remaining()) {
  try {
    const handle = await page.waitForFunction(predicate, arg, { timeout: Math.min(timeout, remaining()), polling: 100 });
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

function isOpen() {
  return document.querySelector('[data-testid="connection-status"]')?.getAttribute("data-status") === "open";
}

async function connects(page) {
  await page.goto(opts.url, { timeout: remaining(), waitUntil: "domcontentloaded" });
  await waitIn(page, "connected", "the connection status never became open", isOpen);
  passed("connected");
}

/** What the page tells about the drift story: evaluations charted, alarms listed, the
 * overview's drift share, the champion and the lineage's versions. */
function story() {
  const attr = (id, name) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute(name) ?? null;
  return {
    points: Number(attr("drift-chart-psi", "data-point-count") ?? -1),
    alarms: document.querySelectorAll('[data-testid="alarm-list"] li').length,
    report: document.querySelector('[data-testid="drift-summary"]') !== null,
    drift_share: document.querySelector('[data-testid="drift-share"]')?.textContent ?? null,
    champion: document.querySelector('[data-testid="champion-version"]')?.textContent ?? null,
    versions: Number(attr("lineage-version-count", "data-count") ?? -1),
  };
}

async function storyOn(page, tab) {
  await openTab(page, tab);
  if (tab === "lineage") await page.getByTestId("lineage-version-count").waitFor({ timeout: remaining() });
  return page.evaluate(story);
}

/** Reload the late visitor's page and check the story survived it, tab by tab; then a
 * screenshot of every panel. ``expect`` says what must be there. */
async function reloadAndCheck(page, stage, expect) {
  await openTab(page, "drift");
  const before = await page.evaluate(story);
  await page.reload({ timeout: remaining(), waitUntil: "domcontentloaded" });
  await waitIn(page, stage, "the reloaded page never connected", isOpen);
  const want = Math.max(3, before.points);
  const check = `${stage}_reload`;
  await openTab(page, "drift");
  await waitIn(
    page,
    check,
    `after the reload the drift tab showed fewer than ${want} evaluations or no alarm (before it: ${JSON.stringify(before)})`,
    ({ want }) => {
      const points = Number(document.querySelector('[data-testid="drift-chart-psi"]')?.getAttribute("data-point-count") ?? 0);
      return points >= want && document.querySelectorAll('[data-testid="alarm-list"] li').length >= 1;
    },
    { want },
    RELOAD_MS,
  );
  const seen = { drift: await page.evaluate(story) };
  if (!seen.drift.report) throw new CheckFailed(check, "after the reload the drift tab showed no latest evaluation");
  seen.overview = await storyOn(page, "overview");
  if (seen.overview.drift_share === "—") throw new CheckFailed(check, "after the reload the overview's drift share was '—'");
  seen.lineage = await storyOn(page, "lineage");
  if (seen.lineage.versions < expect.versions) {
    throw new CheckFailed(check, `after the reload the lineage showed ${seen.lineage.versions} versions, not ${expect.versions}`);
  }
  if (expect.promoted && seen.overview.champion === "v1") throw new CheckFailed(check, "after the reload the champion was still v1");
  const shots = await panelShots(page, stage);
  passed(check, {
    before_reload: { points: before.points, alarms: before.alarms },
    after_reload: { points: seen.drift.points, alarms: seen.drift.alarms, drift_share: seen.overview.drift_share,
                    champion: seen.overview.champion, versions: seen.lineage.versions },
    screenshots: shots,
  });
}

async function panelShots(page, stage) {
  const shots = [];
  for (const tab of TABS) {
    await openTab(page, tab);
    if (tab === "lineage") await page.getByTestId("lineage-version-count").waitFor({ timeout: remaining() }).catch(() => undefined);
    await page.waitForTimeout(300); // charts draw on the next frame
    const path = await screenshot(page, `${stage}-${tab}.png`);
    if (path) shots.push(path);
  }
  return shots;
}

/** A second visitor: arrives at the drift tab, waits for the alarm, then reloads. */
async function lateAfterAlarm(page) {
  await page.goto(`${opts.url}/#drift`, { timeout: remaining(), waitUntil: "domcontentloaded" });
  await waitIn(page, "alarm", "no alarm reached the drift tab", () =>
    document.querySelectorAll('[data-testid="alarm-list"] li').length > 0,
  );
  passed("alarm");
  await reloadAndCheck(page, "after_alarm", { versions: 1, promoted: false });
}

/** The same visitor once a new champion serves: reloads again. */
async function lateAfterPromotion(page) {
  await openTab(page, "overview");
  const champion = await waitIn(page, "promotion", "no new champion was promoted", () => {
    const text = document.querySelector('[data-testid="champion-version"]')?.textContent ?? "";
    return /^v\d+$/.test(text) && text !== "v1" ? text : null;
  });
  passed("promotion", { champion });
  await reloadAndCheck(page, "after_promotion", { versions: 2, promoted: true });
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

async function watchLoop(page) {
  await openTab(page, "retraining");
  await page.getByTestId("state-diagram").waitFor({ timeout: remaining() });
  await page.evaluate(recordLoopStates);
}

async function trainingCycle(page) {
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

async function screenshot(page, name) {
  const path = join(opts.screenshots, name);
  try {
    await page.screenshot({ path, fullPage: true, timeout: 15_000 });
    return path;
  } catch (error) {
    console.error(`screenshot failed: ${error instanceof Error ? error.message : error}`);
    return null;
  }
}

mkdirSync(opts.screenshots, { recursive: true });
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
      // The live page sits in a background tab while the late visitor is in front.
      "--disable-background-timer-throttling",
      "--disable-backgrounding-occluded-windows",
      "--disable-renderer-backgrounding",
    ],
    viewport: { width: 1400, height: 1000 },
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const late = await context.newPage();
  for (const p of [page, late]) p.on("pageerror", (error) => pageErrors.push(error.message));
  try {
    for (const check of [connects, driftPoints, watchLoop]) await check(page);
    await lateAfterAlarm(late);
    await trainingCycle(page);
    await lateAfterPromotion(late);
    for (const check of [lineage, traffic]) await check(page);
    const path = await screenshot(page, "live.png");
    console.log(JSON.stringify({ check: "screenshot", ok: path !== null, path, elapsed_s: elapsed() }));
  } catch (error) {
    status = 1;
    const path = await screenshot(page, "live.png");
    await screenshot(late, "late.png");
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
