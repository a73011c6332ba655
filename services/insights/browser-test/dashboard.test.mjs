// Browser test of the insights dashboard: Debian's chromium driven by playwright-core
// (never a downloaded browser) against the dashboard_fixture example, which serves the
// integration tests' known rows from SQLite.
//
// Run through run.sh, which builds the fixture. Environment: FIXTURE_BIN (the built
// example), CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default <repo>/test-artifacts).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const fixtureBin = process.env.FIXTURE_BIN || join(repo, "target/debug/examples/dashboard_fixture");
const artifacts = process.env.ARTIFACTS || join(repo, "test-artifacts");
const FROM = "2026-11-20T10:00:00Z";
const TO = "2026-11-20T12:00:00Z";

let fixture;
let baseUrl;
let browser;

function startFixture() {
  return new Promise((resolvePromise, reject) => {
    // stdin stays open: the fixture exits when it closes, so it never outlives the test.
    fixture = spawn(fixtureBin, [], { stdio: ["pipe", "pipe", "inherit"] });
    fixture.on("error", reject);
    fixture.on("exit", (code) => reject(new Error(`dashboard_fixture exited early with ${code}`)));
    const lines = createInterface({ input: fixture.stdout });
    lines.on("line", (line) => {
      const match = /^listening (http:\/\/\S+)$/.exec(line);
      if (match) resolvePromise(match[1]);
    });
  });
}

before(async () => {
  baseUrl = await startFixture();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
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
  });
});

after(async () => {
  await browser?.close();
  if (fixture) {
    fixture.removeAllListeners("exit");
    fixture.stdin.end();
    fixture.kill("SIGTERM");
  }
});

async function apiJson(path) {
  const response = await fetch(`${baseUrl}${path}`);
  assert.equal(response.status, 200, `${path}: ${response.status}`);
  return response.json();
}

// How many pixels of the canvas are painted (not fully transparent).
function paintedPixels(page, selector) {
  return page.$eval(selector, (canvas) => {
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
    return painted;
  });
}

test("the dashboard charts a title picked by name and shows the API's numbers", async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });

  await page.goto(`${baseUrl}/dashboard?from=${FROM}&to=${TO}&granularity=epoch`);
  await page.fill("#search", "stranger");
  const result = page.locator("#search-results li", { hasText: "Stranger Lights" });
  await result.waitFor();
  await result.click();

  const api = await apiJson(`/v1/titles/101/performance?from=${FROM}&to=${TO}&granularity=epoch`);
  await page.waitForFunction(() => document.getElementById("total-impressions").textContent !== "–");
  const shown = await page.textContent("#total-impressions");
  assert.equal(Number(shown.replace(/,/g, "")), api.totals.impressions);
  assert.equal(api.totals.impressions, 28);
  assert.equal(Number((await page.textContent("#total-plays")).replace(/,/g, "")), api.totals.plays);
  assert.equal(await page.textContent("#total-take-rate"), `${(api.totals.take_rate * 100).toFixed(2)}%`);
  assert.equal(await page.textContent("#title-name"), "Stranger Lights (101)");

  // The chart rendered: a sized canvas with something painted on it.
  const canvas = page.locator("#chart canvas");
  await canvas.waitFor();
  const box = await canvas.boundingBox();
  assert.ok(box && box.width > 100 && box.height > 100, `chart canvas is ${JSON.stringify(box)}`);
  assert.ok((await paintedPixels(page, "#chart canvas")) > 500, "the chart canvas is blank");
  const legend = await page.locator("#chart .u-legend").textContent();
  assert.match(legend, /impressions/);

  // Top titles agree with the API.
  const top = await apiJson(`/v1/titles/top?from=${FROM}&to=${TO}&metric=plays&limit=10&min_impressions=0`);
  await page.waitForFunction(() => document.querySelectorAll("#top tbody tr").length > 0);
  const firstTop = await page.locator("#top tbody tr").first().locator("td").nth(1).textContent();
  assert.equal(firstTop, top.titles[0].title);

  // Slicing by country draws one series per country.
  await page.selectOption("#slice", "country");
  await page.waitForFunction(() => !document.getElementById("breakdown").hidden);
  const countries = await page.locator("#breakdown tbody tr td:first-child").allTextContents();
  assert.deepEqual([...countries].sort(), ["BR", "CA", "US"]);

  // The launch early read rendered its chart too.
  await page.locator("#launch-chart canvas").waitFor();

  // The region box narrows the page to one region's impressions. The fixture's cells
  // were counted before cells had a region (region ''), so a named region has none;
  // emptied, the box gives the global view back.
  await page.fill("#region", "eu-west");
  await page.dispatchEvent("#region", "change");
  await page.waitForFunction(() => document.getElementById("total-impressions").textContent === "0");
  await page.fill("#region", "");
  await page.dispatchEvent("#region", "change");
  await page.waitForFunction(() => document.getElementById("total-impressions").textContent === "28");

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

// The live page: `nearline serve all --embedded` with bearer tokens on. Events posted a
// moment ago appear without a reload (the default range includes the current epoch and
// the page refreshes itself), and without a token the page asks for one.
const TOKEN = "browser-test-token-0123456789";
const NEARLINE_BIN = process.env.NEARLINE_BIN || join(repo, "target/debug/nearline");

function startEmbedded(dataDir) {
  const env = { ...process.env, NEARLINE__AUTH__TOKENS: `["${TOKEN}"]`, NEARLINE__ATTRIBUTION__BATCH_INTERVAL: "200ms" };
  env.NEARLINE__EMBEDDED__SQLITE_PATH = join(dataDir, "nearline.db");
  for (const section of ["INGEST", "ATTRIBUTION", "INSIGHTS", "BILLBOARD"]) {
    env[`NEARLINE__${section}__HTTP_PORT`] = "0";
    env[`NEARLINE__${section}__GRPC_PORT`] = "0";
  }
  const child = spawn(NEARLINE_BIN, ["serve", "all", "--embedded"], { env, stdio: ["ignore", "pipe", "inherit"] });
  const urls = {};
  return new Promise((resolvePromise, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`nearline exited early with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const [service, http] = line.split(/\s+/);
      if (http?.startsWith("http://")) urls[service] = http;
      if (Object.keys(urls).length === 4) resolvePromise({ child, urls });
    });
  });
}

async function post(url, body, method = "POST") {
  const response = await fetch(url, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, `${method} ${url}: ${response.status} ${await response.text()}`);
}

test("the live page shows events posted a moment ago, and asks for the token", async () => {
  const dataDir = join(artifacts, `live-${process.pid}`);
  mkdirSync(dataDir, { recursive: true });
  const { child, urls } = await startEmbedded(dataDir);
  try {
    const video = 80100172;
    await post(`${urls.ingest}/v1/videos/${video}`, { title: "Live Title", kind: "movie" }, "PUT");
    const event = (n, type) => ({
      type, event_id: `${type}-${n}`, request_id: `r${n}`, member_id: "m1", video_id: video,
      ...(type === "impression" ? { canvas: "row" } : { watch_seconds: 60 }),
      country: "US", device: "tv", event_time: new Date(Date.now() - 1000).toISOString(),
    });
    await post(`${urls.ingest}/v1/events`, { events: [event(1, "impression"), event(1, "play")] });

    const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
    await page.goto(`${urls.insights}/dashboard?video_id=${video}&granularity=epoch`);
    // No token in the URL: the API answers 401 and the page asks for it.
    await page.locator("#token-form").waitFor({ state: "visible" });
    await page.fill("#token", TOKEN);
    await page.click("#token-form button");
    const impressions = () => page.textContent("#total-impressions").then((t) => Number(t.replace(/,/g, "")));
    await page.waitForFunction(() => document.getElementById("total-impressions").textContent === "1", null, { timeout: 30000 });
    assert.equal(await impressions(), 1);

    // A second impression, posted while the page is open, appears without a reload.
    await post(`${urls.ingest}/v1/events`, { events: [event(2, "impression")] });
    await page.waitForFunction(() => document.getElementById("total-impressions").textContent === "2", null, { timeout: 30000 });
    await page.close();
  } finally {
    child.removeAllListeners("exit");
    child.kill("SIGTERM");
  }
});
