// The insights dashboard: plain JS over the /v1 API, charts by the vendored uPlot;
// common.js has the API client, the token handling and the chart helper. Page
// parameters (all optional): ?video_id=&from=&to=&granularity=&slice=&region=
//
// The default range ends at the end of the current epoch, so what was posted a moment
// ago is on the page, and the page refreshes itself every few seconds while visible.
"use strict";

function defaultRange() {
  // Seven days up to the end of the current epoch (default 30 min epochs), so events
  // posted a moment ago are in range.
  const to = Math.floor(Date.now() / EPOCH) * EPOCH + EPOCH;
  return { from: toIso(to - 7 * 24 * HOUR), to: toIso(to) };
}

function range() {
  return { from: $("from").value.trim(), to: $("to").value.trim() };
}

function filtersQuery() {
  const { from, to } = range();
  const region = $("region").value.trim();
  // No region: every region's counts, the global view (docs/regions.md).
  const only = region ? `&region=${encodeURIComponent(region)}` : "";
  return `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}${only}`;
}

// One chart per element, replaced on each draw.
function draw(elementId, opts, data) {
  const element = $(elementId);
  if (state.charts[elementId]) {
    state.charts[elementId].destroy();
  }
  const width = Math.max(320, element.clientWidth || 800);
  state.charts[elementId] = new uPlot({ width, height: 300, ...opts }, data, element);
}

function countAxes() {
  return [
    {},
    { scale: "count", label: "count", size: 70 },
    { scale: "rate", side: 1, label: "take rate", size: 70, grid: { show: false }, values: (u, vs) => vs.map(fmtRate) },
  ];
}

async function searchTitles() {
  const text = $("search").value.trim();
  const list = $("search-results");
  if (!text) {
    list.replaceChildren();
    return;
  }
  try {
    const body = await api(`/v1/titles?search=${encodeURIComponent(text)}&limit=10`);
    list.replaceChildren(
      ...body.titles.map((t) => {
        const item = document.createElement("li");
        item.textContent = `${t.title} (${t.kind}, ${t.video_id})`;
        item.dataset.videoId = t.video_id;
        item.addEventListener("click", () => {
          list.replaceChildren();
          $("search").value = t.title;
          selectTitle(t.video_id);
        });
        return item;
      }),
    );
    showError(null);
  } catch (error) {
    showError(error);
  }
}

function selectTitle(videoId) {
  state.videoId = videoId;
  loadPerformance();
  loadLaunch();
}

async function loadPerformance() {
  if (!state.videoId) return;
  const slice = $("slice").value;
  const granularity = $("granularity").value;
  let path = `/v1/titles/${state.videoId}/performance?${filtersQuery()}&granularity=${granularity}`;
  if (slice) path += `&group_by=${slice}`;
  try {
    const body = await api(path);
    showError(null);
    $("title-name").textContent = `${body.title} (${body.video_id})`;
    showFreshness(body.complete_until);
    $("total-impressions").textContent = fmtInt(body.totals.impressions);
    $("total-plays").textContent = fmtInt(body.totals.plays);
    $("total-take-rate").textContent = fmtRate(body.totals.take_rate);
    $("total-unattributed").textContent = fmtInt(body.totals.unattributed_plays);
    if (slice) {
      drawSliced(body, slice);
    } else {
      drawTotals(body);
    }
    drawBreakdown(body, slice);
  } catch (error) {
    showError(error);
  }
}

function drawTotals(body) {
  const xs = body.series.map((p) => Date.parse(p.start) / 1000);
  draw(
    "chart",
    {
      scales: { x: { time: true }, count: {}, rate: { range: [0, 1] } },
      series: [
        {},
        { label: "impressions", stroke: COLORS[0], scale: "count", value: (u, v) => fmtInt(v) },
        { label: "plays", stroke: COLORS[1], scale: "count", value: (u, v) => fmtInt(v) },
        { label: "take rate", stroke: COLORS[2], scale: "rate", value: (u, v) => fmtRate(v) },
      ],
      axes: countAxes(),
    },
    [xs, body.series.map((p) => p.impressions), body.series.map((p) => p.plays), body.series.map((p) => p.take_rate)],
  );
}

function drawSliced(body, slice) {
  const metric = $("slice-metric").value;
  const starts = [...new Set(body.series.map((p) => p.start))].sort();
  const groups = [...new Set(body.series.map((p) => p.group[slice]))].sort();
  const index = new Map(starts.map((s, i) => [s, i]));
  const columns = groups.map(() => starts.map(() => null));
  for (const p of body.series) {
    columns[groups.indexOf(p.group[slice])][index.get(p.start)] = p[metric];
  }
  const isRate = metric === "take_rate";
  draw(
    "chart",
    {
      scales: { x: { time: true }, y: isRate ? { range: [0, 1] } : {} },
      series: [
        {},
        ...groups.map((g, i) => ({
          label: `${slice}=${g}`,
          stroke: COLORS[i % COLORS.length],
          spanGaps: false,
          value: (u, v) => (isRate ? fmtRate(v) : fmtInt(v)),
        })),
      ],
      axes: [{}, { label: metric, size: 70, values: (u, vs) => vs.map(isRate ? fmtRate : fmtInt) }],
    },
    [starts.map((s) => Date.parse(s) / 1000), ...columns],
  );
}

function drawBreakdown(body, slice) {
  const table = $("breakdown");
  table.hidden = !slice;
  if (!slice) return;
  const sums = new Map();
  for (const p of body.series) {
    const key = p.group[slice];
    const s = sums.get(key) || { impressions: 0, plays: 0 };
    s.impressions += p.impressions;
    s.plays += p.plays;
    sums.set(key, s);
  }
  const rows = [...sums.entries()].sort((a, b) => b[1].impressions - a[1].impressions);
  table.tBodies[0].replaceChildren(
    ...rows.map(([group, s]) => {
      const row = document.createElement("tr");
      const rate = s.impressions ? s.plays / s.impressions : null;
      for (const text of [group, fmtInt(s.impressions), fmtInt(s.plays), fmtRate(rate)]) {
        row.insertCell().textContent = text;
      }
      return row;
    }),
  );
}

async function loadLaunch() {
  if (!state.videoId) return;
  try {
    const body = await api(`/v1/titles/${state.videoId}/launch?hours=24`);
    $("launch-title").textContent = `${body.title}, launched ${body.launch_at}, ${body.comparable_titles} comparable launches`;
    $("launch-note").textContent = body.note || "";
    const hours = body.hours;
    const band = (k) => hours.map((h) => (h.comparables.take_rate ? h.comparables.take_rate[k] : null));
    draw(
      "launch-chart",
      {
        // From 0 to a little above the largest rate: take rates are a few percent.
        scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(0.05, (max || 0) * 1.15)] } },
        series: [
          { label: "hour since launch" },
          { label: "this title", stroke: COLORS[0], width: 2, value: (u, v) => fmtRate(v) },
          { label: "comparables median", stroke: COLORS[2], value: (u, v) => fmtRate(v) },
          { label: "p25", stroke: "#9ca3af", dash: [4, 4], value: (u, v) => fmtRate(v) },
          { label: "p75", stroke: "#9ca3af", dash: [4, 4], value: (u, v) => fmtRate(v) },
        ],
        axes: [{ label: "hours since launch" }, { label: "take rate", size: 70, values: (u, vs) => vs.map(fmtRate) }],
      },
      [hours.map((h) => h.hour), hours.map((h) => h.take_rate), band("median"), band("p25"), band("p75")],
    );
  } catch (error) {
    // A title without a launch time has no early read; that is not a page error.
    $("launch-title").textContent = "";
    $("launch-note").textContent = error.message;
    if (state.charts["launch-chart"]) {
      state.charts["launch-chart"].destroy();
      delete state.charts["launch-chart"];
    }
  }
}

async function loadTop() {
  const metric = $("top-metric").value;
  try {
    const body = await api(`/v1/titles/top?${filtersQuery()}&metric=${metric}&limit=10&min_impressions=${metric === "take_rate" ? 10 : 0}`);
    showFreshness(body.complete_until);
    $("top").tBodies[0].replaceChildren(
      ...body.titles.map((t) => {
        const row = document.createElement("tr");
        row.dataset.videoId = t.video_id;
        for (const text of [t.rank, t.title || `#${t.video_id}`, fmtInt(t.impressions), fmtInt(t.plays), fmtRate(t.take_rate)]) {
          row.insertCell().textContent = text;
        }
        row.addEventListener("click", () => {
          $("search").value = t.title || "";
          selectTitle(t.video_id);
        });
        return row;
      }),
    );
  } catch (error) {
    showError(error);
  }
}

function refresh() {
  loadTop();
  loadPerformance();
  loadLaunch();
}

function init() {
  state.onToken = refresh;
  keepTokenInLinks();
  const defaults = defaultRange();
  $("from").value = page.get("from") || defaults.from;
  $("to").value = page.get("to") || defaults.to;
  state.defaultTo = defaults.to;
  if (page.get("granularity")) $("granularity").value = page.get("granularity");
  if (page.get("slice")) $("slice").value = page.get("slice");
  if (page.get("region")) $("region").value = page.get("region");
  let timer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(searchTitles, 200);
  });
  for (const id of ["granularity", "slice", "slice-metric"]) $(id).addEventListener("change", loadPerformance);
  $("top-metric").addEventListener("change", loadTop);
  $("region").addEventListener("change", refresh);
  $("refresh").addEventListener("click", refresh);
  if (page.get("video_id")) state.videoId = Number(page.get("video_id"));
  refresh();
  // Keep the page current while someone looks at it; the default range follows the clock.
  setInterval(() => {
    if (document.visibilityState !== "visible" || !$("token-form").hidden) return;
    if (!page.get("to") && $("to").value === state.defaultTo) {
      const defaults = defaultRange();
      $("from").value = defaults.from;
      $("to").value = defaults.to;
      state.defaultTo = defaults.to;
    }
    refresh();
  }, AUTO_REFRESH);
}

init();
