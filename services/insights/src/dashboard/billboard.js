// The billboard page: what the bandits learned and how they serve, from billboard's
// read endpoints relayed by insights (/dashboard/api/billboard/{history,model}, same
// origin), and the freshness from insights. Refreshes itself every few seconds.
"use strict";

const names = new Map();

function fmtLag(seconds) {
  if (seconds == null) return "–";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

const titleName = (id) => names.get(id) || `#${id}`;

// The freshness and the titles' names, from insights over the last seven days.
async function loadInsights() {
  const to = Math.floor(Date.now() / EPOCH) * EPOCH + EPOCH;
  const body = await api(`/v1/titles/top?from=${toIso(to - 7 * 24 * HOUR)}&to=${toIso(to)}&metric=plays&limit=100`);
  showFreshness(body.complete_until);
  for (const t of body.titles) if (t.title) names.set(t.video_id, t.title);
}

async function loadHistory() {
  const body = await api("/dashboard/api/billboard/history?canvas=billboard");
  $("model-version").textContent = body.model_version;
  $("learning-lag").textContent = fmtLag(body.learning_lag_seconds);
  $("last-outcome").textContent = body.last_outcome_event_time || "none yet";
  $("event-clock").textContent = body.event_clock || "none yet";
  const outcomes = body.totals.reduce((n, t) => n + t.outcomes, 0);
  const explored = body.totals.reduce((n, t) => n + t.explored, 0);
  $("outcomes-total").textContent = fmtInt(outcomes);
  $("explored-share").textContent = fmtRate(outcomes ? explored / outcomes : null);

  const policies = [...new Set(body.series.map((p) => p.policy))].sort((a, b) => (a === "uniform") - (b === "uniform") || a.localeCompare(b));
  const starts = [...new Set(body.series.map((p) => p.epoch_start))].sort();
  const index = new Map(starts.map((s, i) => [s, i]));
  const rates = policies.map(() => starts.map(() => null));
  const exploredBy = starts.map(() => [0, 0]);
  for (const p of body.series) {
    const i = index.get(p.epoch_start);
    rates[policies.indexOf(p.policy)][i] = p.take_rate;
    exploredBy[i][0] += p.explored;
    exploredBy[i][1] += p.outcomes;
  }
  const xs = starts.map((s) => Date.parse(s) / 1000);
  if (xs.length) {
    draw(
      "take-chart",
      {
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(0.05, max * 1.1)] } },
        series: [
          {},
          ...policies.map((p, i) => ({
            label: p,
            stroke: p === "uniform" ? "#6b7280" : COLORS[i % COLORS.length],
            width: p === "uniform" ? 1.5 : 2,
            dash: p === "uniform" ? [6, 4] : undefined,
            spanGaps: true,
            value: (u, v) => fmtRate(v),
          })),
        ],
        axes: [{}, { label: "take rate", size: 70, values: (u, vs) => vs.map(fmtRate) }],
      },
      [xs, ...rates],
    );
    draw(
      "explore-chart",
      {
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(0.05, max * 1.1)] } },
        series: [{}, { label: "explored share", stroke: COLORS[4], width: 2, value: (u, v) => fmtRate(v) }],
        axes: [{}, { label: "explored", size: 70, values: (u, vs) => vs.map(fmtRate) }],
      },
      [xs, exploredBy.map(([e, n]) => (n ? e / n : null))],
    );
  }

  const uniform = body.totals.find((t) => t.policy === "uniform")?.take_rate;
  $("policies").tBodies[0].replaceChildren(
    ...policies.map((policy) => {
      const t = body.totals.find((x) => x.policy === policy);
      const row = document.createElement("tr");
      row.dataset.policy = policy;
      const lift = uniform && t.take_rate != null && policy !== "uniform" ? `${(t.take_rate / uniform).toFixed(2)}×` : "baseline";
      for (const text of [policy, fmtInt(t.outcomes), fmtInt(t.plays), fmtRate(t.take_rate), lift, fmtRate(t.explored_share)]) {
        row.insertCell().textContent = text;
      }
      return row;
    }),
  );
}

// Pick shares per bucket: the pool's pairs summed per title, under the policy with the
// largest share of traffic; filtered by country and device on the page.
let model = null;

async function loadModel() {
  model = await api("/dashboard/api/billboard/model");
  $("pick-policy").textContent = `pool requests under ${model.pick_probability_policy} (largest traffic share), model v${model.model_version}`;
  for (const [id, key] of [["country", "country"], ["device", "device"]]) {
    const select = $(id);
    const known = new Set([...select.options].map((o) => o.value));
    for (const value of [...new Set(model.buckets.map((b) => b[key]))].sort()) {
      if (!known.has(value)) select.add(new Option(value, value));
    }
    if (id === "country" && !select.dataset.touched && select.value === "" && select.options.length > 1) {
      select.value = select.options[1].value;
    }
  }
  drawPicks();
}

function drawPicks() {
  if (!model) return;
  const country = $("country").value;
  const device = $("device").value;
  const buckets = model.buckets.filter((b) => (!country || b.country === country) && (!device || b.device === device));
  const titles = [...new Set(model.buckets.flatMap((b) => b.arms.filter((a) => a.pick_probability != null).map((a) => a.video_id)))].sort((a, b) => a - b);
  const head = $("picks").tHead.rows[0];
  head.replaceChildren();
  for (const text of ["Bucket", ...titles.map(titleName)]) {
    const th = document.createElement("th");
    th.textContent = text;
    head.appendChild(th);
  }
  const order = ["night", "morning", "afternoon", "evening"];
  buckets.sort((a, b) => a.country.localeCompare(b.country) || a.device.localeCompare(b.device) || order.indexOf(a.daypart) - order.indexOf(b.daypart));
  $("picks").tBodies[0].replaceChildren(
    ...buckets.map((b) => {
      const row = document.createElement("tr");
      row.insertCell().textContent = `${b.country} · ${b.device} · ${b.daypart}`;
      const shares = new Map();
      for (const a of b.arms) {
        if (a.pick_probability != null) shares.set(a.video_id, (shares.get(a.video_id) || 0) + a.pick_probability);
      }
      for (const id of titles) {
        const cell = row.insertCell();
        cell.className = "share";
        const share = shares.get(id);
        cell.textContent = share == null ? "–" : `${(share * 100).toFixed(1)}%`;
        if (share != null) cell.style.background = `rgba(37, 99, 235, ${Math.min(0.85, share * 1.5).toFixed(3)})`;
        if (share != null && share > 0.4) cell.style.color = "#fff";
      }
      return row;
    }),
  );
}

async function refresh() {
  try {
    await loadInsights();
    await loadHistory();
    await loadModel();
    showError(null);
  } catch (error) {
    showError(error);
  }
}

function init() {
  state.onToken = refresh;
  keepTokenInLinks();
  for (const id of ["country", "device"]) {
    $(id).addEventListener("change", () => {
      $(id).dataset.touched = "1";
      drawPicks();
    });
  }
  refresh();
  setInterval(() => {
    if (document.visibilityState !== "visible" || !$("token-form").hidden) return;
    refresh();
  }, AUTO_REFRESH);
}

init();
