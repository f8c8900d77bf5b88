// nightcrew dashboard: live progress over Server-Sent Events, confirmations, the chart.
// No framework and no build step; every page works without it (forms post normally).
"use strict";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

function metricsText(metrics) {
  if (!metrics) return "";
  const parts = [];
  if ("done" in metrics && "total" in metrics) parts.push(`${metrics.done}/${metrics.total}`);
  for (const [name, value] of Object.entries(metrics)) {
    if (name === "done" || name === "total") continue;
    parts.push(name.includes("cost") && typeof value === "number" ? `$${value.toFixed(2)}` : `${name} ${value}`);
  }
  return parts.join(", ");
}

// "12 s", "2 min", "1 h 5 min": nightcrew.progress.remaining_text.
function remainingText(seconds) {
  if (typeof seconds !== "number") return null;
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60), rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

// The words of views.progress_text: "Update Prices (45% - 2 min remaining)".
function progressLabel(job) {
  const percent = `${Math.round(job.progress || 0)}%`;
  const extra = metricsText(job.metrics);
  const remaining = remainingText(job.eta_seconds);
  if (remaining === null) {
    const text = job.stage ? `${job.stage}... ${percent}` : percent;
    return extra ? `${text} (${extra})` : text;
  }
  const inside = `${percent} - ${remaining} remaining` + (extra ? `, ${extra}` : "");
  return job.stage ? `${job.stage} (${inside})` : inside;
}

function setProgress(box, job) {
  const bar = box.querySelector("progress");
  const value = Math.round((job.progress || 0) * 10) / 10;
  bar.value = value;
  bar.setAttribute("value", value);
  bar.setAttribute("aria-valuenow", value);
  bar.setAttribute("aria-label", `Progress of ${job.type} ${job.id}`);
  box.querySelector(".progress-label").textContent = progressLabel(job);
  box.dataset.status = job.status;
}

function statusBadge(status) {
  const span = document.createElement("span");
  span.className = `status status-${status}`;
  span.textContent = status;
  return span;
}

function addTimeline(kind, text) {
  const list = document.getElementById("timeline");
  if (!list) return;
  const li = document.createElement("li");
  li.className = `t-${kind}`;
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  li.append(time, ` ${text}`);
  list.append(li);
}

// One job, live: its bar, status, stage timeline and result (job page, app pages).
function followJob(box) {
  const id = box.dataset.liveJob;
  let last = {};
  try { last = JSON.parse(document.getElementById("job-data")?.textContent || "{}"); } catch (e) { last = {}; }
  const source = new EventSource(`/jobs/${id}/events`);
  source.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    box.querySelectorAll(`[data-progress-for="${id}"]`).forEach((el) => setProgress(el, job));
    if (job.stage && job.stage !== last.stage) addTimeline("stage", `stage: ${job.stage}`);
    if (last.status && job.status !== last.status) addTimeline(job.status, job.status);
    const status = document.getElementById("job-status");
    if (status) status.replaceChildren(statusBadge(job.status));
    const attempts = box.querySelector('[data-field="attempts"]');
    if (attempts) attempts.textContent = job.attempts;
    const result = document.getElementById("job-result");
    if (result && job.result !== null && job.result !== undefined) {
      result.textContent = JSON.stringify(job.result, null, 2);
    }
    last = job;
    if (TERMINAL.has(job.status)) source.close();
  });
}

// The overview: running jobs, backlog counts and the badge from one stream.
function followOverview(list) {
  const template = document.getElementById("running-item");
  const empty = document.getElementById("running-empty");
  const source = new EventSource("/events");
  source.addEventListener("overview", (event) => {
    const data = JSON.parse(event.data);
    const seen = new Set();
    for (const job of data.running) {
      seen.add(job.id);
      let item = list.querySelector(`[data-job="${job.id}"]`);
      if (!item) {
        item = template.content.firstElementChild.cloneNode(true);
        item.dataset.job = job.id;
        const link = item.querySelector("a");
        link.href = `/jobs/${job.id}`;
        link.textContent = job.type;
        item.querySelector(".mono").textContent = job.id.slice(0, 12) + "…";
        item.querySelector(".job-progress").dataset.progressFor = job.id;
        list.append(item);
      }
      setProgress(item.querySelector(".job-progress"), job);
    }
    for (const item of list.querySelectorAll("[data-job]")) {
      if (!seen.has(item.dataset.job)) item.remove();
    }
    empty.hidden = data.running.length > 0;
    const set = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
    set("stat-running", data.running_count);
    set("stat-queued", data.queue_depth);
    const badge = document.getElementById("unread");
    if (badge) { badge.textContent = data.unread; badge.hidden = !data.unread; }
  });
}

function drawChart(canvas, data, kind) {
  if (!window.Chart || !canvas) return;
  const ink = "#1b1f24", grid = "#e3e6ea";
  new window.Chart(canvas, {
    type: kind,
    data: data,
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { labels: { color: ink } } },
      scales: {
        x: { stacked: kind === "bar", ticks: { color: ink, maxRotation: 0, autoSkip: true }, grid: { color: grid } },
        y: { stacked: kind === "bar", beginAtZero: kind === "bar", ticks: { color: ink, precision: 0 }, grid: { color: grid } },
      },
    },
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
      const field = form.querySelector('input[name="confirmed"]');
      if (field) field.value = "1";
    });
  }
  document.querySelectorAll("[data-live-job]").forEach(followJob);
  const running = document.querySelector("[data-live-overview]");
  if (running) followOverview(running);
  const hourly = document.getElementById("hourly-data");
  if (hourly) {
    const d = JSON.parse(hourly.textContent);
    drawChart(document.getElementById("hourly-chart"), {
      labels: d.labels,
      datasets: [
        { label: "completed", data: d.completed, backgroundColor: "#2e8b57" },
        { label: "failed or cancelled", data: d.failed, backgroundColor: "#c0392b" },
      ],
    }, "bar");
  }
  // App pages: <canvas data-chart="line"> with a JSON data block (Chart.js "data" shape)
  // in the <script type="application/json"> named by data-chart-data.
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const block = document.getElementById(canvas.dataset.chartData);
    if (block) drawChart(canvas, JSON.parse(block.textContent), canvas.dataset.chart);
  }
});
