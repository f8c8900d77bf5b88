// Prospecting: a campaign's live view. Follows its job over the dashboard's SSE stream
// (/jobs/{id}/events): bar, stage, the five metrics and running cost; reloads once the
// job has finished, to show the results table. Served from /prospecting (no inline script).
"use strict";

(function () {
  const box = document.getElementById("campaign");
  if (!box || !box.dataset.job) return;
  const done = new Set(["completed", "failed", "cancelled"]);
  if (done.has(box.dataset.status)) return;
  const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
  const source = new EventSource(`/jobs/${box.dataset.job}/events`);
  source.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    const value = Math.round((job.progress || 0) * 10) / 10;
    const bar = document.getElementById("campaign-bar");
    bar.value = value;
    bar.setAttribute("aria-valuenow", value);
    text("campaign-percent", `${Math.round(job.progress || 0)}%`);
    if (job.stage) text("campaign-stage", job.stage.replaceAll("_", " "));
    const metrics = job.metrics || {};
    box.querySelectorAll("[data-metric]").forEach((el) => {
      const v = metrics[el.dataset.metric];
      if (v === undefined || v === null) return;
      el.textContent = el.dataset.metric === "total_cost" ? `$${Number(v).toFixed(2)}` : `${v}`;
    });
    const badge = document.querySelector("#campaign-status .status");
    if (badge) { badge.textContent = job.status; badge.className = `status status-${job.status}`; }
    if (done.has(job.status)) {
      source.close();
      window.location.reload();
    }
  });
})();
