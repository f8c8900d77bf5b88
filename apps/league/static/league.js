// The League page: the Background Job Status table, live over Server-Sent Events.
"use strict";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function when(iso) {
  return iso ? iso.slice(0, 19).replace("T", " ") : "";
}

function statusCell(status) {
  const td = document.createElement("td");
  const span = document.createElement("span");
  span.className = `run-status run-${status}`;
  span.textContent = status;
  td.append(span);
  return td;
}

function functionsCell(run) {
  const td = document.createElement("td");
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const ok = run.functions.filter((f) => f.status === "succeeded").length;
  summary.textContent = `${ok}/${run.functions.length} succeeded`;
  const list = document.createElement("ul");
  list.className = "fn-list";
  for (const f of run.functions) {
    const li = document.createElement("li");
    li.className = `fn-${f.status}`;
    let text = `${f.function}: ${f.status}`;
    if (f.attempts > 1) text += `, ${f.attempts} attempts`;
    if (f.duration_ms !== null) text += `, ${f.duration_ms} ms`;
    if (f.status === "failed" && f.error) text += ` (${f.error})`;
    li.textContent = text;
    list.append(li);
  }
  details.append(summary, list);
  td.append(details);
  return td;
}

function retryCell(run, table) {
  const td = document.createElement("td");
  if (run.status !== "failed" || table.dataset.admin !== "true") return td;
  const form = document.createElement("form");
  form.method = "post";
  form.action = `/league/runs/${run.jobId}/retry`;
  form.className = "inline";
  const csrf = document.createElement("input");
  csrf.type = "hidden";
  csrf.name = "csrf";
  csrf.value = table.dataset.csrf;
  const button = document.createElement("button");
  button.className = "btn";
  button.textContent = "Retry";
  form.append(csrf, button);
  td.append(form);
  return td;
}

function runRow(run, table) {
  const tr = document.createElement("tr");
  tr.dataset.run = run.jobId;
  let trigger = run.triggeredBy + (run.matchId ? ` (match ${run.matchId})` : "");
  if (run.triggers > 1) trigger += ` +${run.triggers - 1}`;
  const duration = run.durationMs === null ? "" : `${(run.durationMs / 1000).toFixed(2)} s`;
  const id = cell(run.jobId.slice(0, 8));
  id.className = "mono";
  tr.append(id, cell(trigger), statusCell(run.status), cell(when(run.startedAt)),
            cell(when(run.completedAt)), cell(duration), functionsCell(run), retryCell(run, table));
  return tr;
}

function emptyRow() {
  const tr = document.createElement("tr");
  tr.className = "empty";
  const td = cell("No runs yet.");
  td.colSpan = 8;
  tr.append(td);
  return tr;
}

function followRuns(table) {
  const source = new EventSource("/league/events");
  source.addEventListener("runs", (event) => {
    const data = JSON.parse(event.data);
    const open = new Set([...table.querySelectorAll("tr[data-run] details[open]")]
      .map((d) => d.closest("tr").dataset.run));
    const body = table.querySelector("tbody");
    body.replaceChildren(...(data.length ? data.map((run) => runRow(run, table)) : [emptyRow()]));
    for (const row of body.querySelectorAll("tr[data-run]")) {
      if (open.has(row.dataset.run)) row.querySelector("details").open = true;
    }
    table.dataset.updated = String(Date.now());
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("[data-live-runs]");
  if (table) followRuns(table);
});
