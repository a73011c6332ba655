// Browser test of the dashboard against `nearline demo`: a short demo (the simulated day
// at high speed) runs to the end of its episode, then the billboard page and the
// insights page are loaded in Debian's chromium (playwright-core, never a downloaded
// browser): the billboard page renders its charts and shows the billboard API's
// numbers, the insights page shows the launched title, and both show the freshness the
// API reports. Screenshots of each page go to ARTIFACTS (the README's, under docs/, are
// copies of these).
//
// Run through run.sh. Environment: NEARLINE_BIN (default target/debug/nearline),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default <repo>/test-artifacts).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const artifacts = process.env.ARTIFACTS || join(repo, "test-artifacts");
const NEARLINE_BIN = process.env.NEARLINE_BIN || join(repo, "target/debug/nearline");
const LAUNCHED = 80100012;

let demo;
let urls;
let browser;
let dataDir;

// Starts the demo on free ports and resolves once its episode is complete.
function startDemo() {
  dataDir = join(artifacts, `demo-${process.pid}`);
  mkdirSync(dataDir, { recursive: true });
  const env = {
    ...process.env,
    NEARLINE__EMBEDDED__DATA_DIR: dataDir,
    NEARLINE__ATTRIBUTION__BATCH_INTERVAL: "200ms",
    NEARLINE__BILLBOARD__FLUSH_INTERVAL: "200ms",
    NEARLINE__BILLBOARD__CATALOG_REFRESH: "1s",
    RUST_LOG: "warn",
  };
  for (const section of ["INGEST", "ATTRIBUTION", "INSIGHTS", "BILLBOARD"]) {
    env[`NEARLINE__${section}__HTTP_PORT`] = "0";
    env[`NEARLINE__${section}__GRPC_PORT`] = "0";
  }
  demo = spawn(NEARLINE_BIN, ["demo", "--fresh", "--speed", "2400", "--traffic", "10", "--members", "3000"], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const found = {};
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error("the demo's episode did not complete within 150 s")), 150000);
    demo.on("error", reject);
    demo.on("exit", (code) => reject(new Error(`nearline demo exited early with ${code}`)));
    createInterface({ input: demo.stdout }).on("line", (line) => {
      console.log(`demo| ${line}`);
      const [service, http] = line.split(/\s+/);
      if (http?.startsWith("http://")) found[service] = http;
      if (line.startsWith("episode complete: ")) {
        clearTimeout(timer);
        resolvePromise({ ...found, verdict: line });
      }
    });
  });
}

before(async () => {
  urls = await startDemo();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (demo) {
    demo.removeAllListeners("exit");
    demo.kill("SIGINT");
    await new Promise((r) => (demo.exitCode !== null ? r() : demo.on("exit", r)));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function apiJson(url) {
  const response = await fetch(url);
  assert.equal(response.status, 200, `${url}: ${response.status}`);
  return response.json();
}

function paintedPixels(page, selector) {
  return page.$eval(selector, (canvas) => {
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
    return painted;
  });
}

function watchProblems(page) {
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  return problems;
}

// The freshness the API reports: insights' complete_until (any query carries it).
async function apiFreshness() {
  const now = Date.now();
  const to = new Date(Math.ceil(now / 1800000) * 1800000).toISOString();
  const from = new Date(Math.ceil(now / 1800000) * 1800000 - 7 * 86400000).toISOString();
  const top = await apiJson(`${urls.insights}/v1/titles/top?from=${from}&to=${to}&limit=1`);
  return `complete until: ${top.complete_until}`;
}

test("the demo's episode ends with 0 differences", () => {
  assert.match(urls.verdict, /0 differences/);
});

test("the billboard page charts what billboard learned and shows its numbers", async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1500 } });
  const problems = watchProblems(page);
  await page.goto(`${urls.insights}/dashboard/billboard`);

  for (const chart of ["#take-chart canvas", "#explore-chart canvas"]) {
    await page.locator(chart).waitFor();
    const box = await page.locator(chart).boundingBox();
    assert.ok(box && box.width > 100 && box.height > 100, `${chart} is ${JSON.stringify(box)}`);
    assert.ok((await paintedPixels(page, chart)) > 500, `${chart} is blank`);
  }
  const legend = await page.locator("#take-chart .u-legend").textContent();
  for (const policy of ["linucb", "thompson", "uniform"]) assert.match(legend, new RegExp(policy));

  // Numbers equal billboard's own API (read directly, not through the relay).
  const history = await apiJson(`${urls.billboard}/v1/billboard/history?canvas=billboard`);
  await page.waitForFunction((v) => document.getElementById("model-version").textContent === v, history.model_version);
  const outcomes = history.totals.reduce((n, t) => n + t.outcomes, 0);
  assert.equal(Number((await page.textContent("#outcomes-total")).replace(/,/g, "")), outcomes);
  const thompson = history.totals.find((t) => t.policy === "thompson");
  const row = page.locator('#policies tbody tr[data-policy="thompson"] td');
  assert.equal(await row.nth(3).textContent(), `${(thompson.take_rate * 100).toFixed(2)}%`);

  // Pick shares per bucket: a row per bucket of the chosen country.
  await page.waitForFunction(() => document.querySelectorAll("#picks tbody tr").length > 0);
  const headers = await page.locator("#picks thead th").allTextContents();
  assert.ok(headers.includes("The Long Night"), `pick-share columns: ${headers}`);

  assert.equal(await page.textContent("#freshness"), await apiFreshness());
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "dashboard-billboard.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("the insights page shows the launched title and the freshness", async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1500 } });
  const problems = watchProblems(page);
  await page.goto(`${urls.insights}/dashboard?video_id=${LAUNCHED}`);
  await page.waitForFunction(() => document.getElementById("title-name").textContent.includes("The Long Night"));
  assert.equal(await page.textContent("#title-name"), `The Long Night (${LAUNCHED})`);
  await page.locator("#launch-chart canvas").waitFor();
  assert.ok((await paintedPixels(page, "#launch-chart canvas")) > 500, "the launch chart is blank");
  assert.match(await page.textContent("#launch-title"), /comparable launches/);
  await page.waitForFunction(() => document.querySelectorAll("#top tbody tr").length > 0);
  assert.equal(await page.textContent("#freshness"), await apiFreshness());
  await page.screenshot({ path: join(artifacts, "dashboard-insights.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});
