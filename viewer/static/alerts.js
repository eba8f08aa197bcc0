// The alerts page: Alertmanager's alerts (with runbook and dashboard links) and silences through its v2 API,
// and the alerts still pending in Prometheus. A silence is created from matchers and a duration, and expired.
"use strict";

const ALERTMANAGER = "/api/alertmanager/api/v2";
const MATCHER = /^\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$/;
const DURATION = /^(\d+)([mhdw])$/;

function cells(row, values) {
  for (const value of values) {
    const cell = row.insertCell();
    if (value instanceof Node) cell.append(value);
    else cell.textContent = value ?? "";
  }
}

function anchor(href, text) {
  return Object.assign(document.createElement("a"), {href, textContent: text});
}

function localUrl(url) {
  // The rules' links name the viewer's default address (rules/thresholds.yml): open this viewer's own pages,
  // whatever its port; keep any other link as it is.
  try {
    const parsed = new URL(url);
    return /^\/(d|runbooks)\//.test(parsed.pathname) ? parsed.pathname + parsed.search : url;
  } catch {
    return url;
  }
}

function since(iso) {
  return formatValue(Date.parse(iso), "dateTimeFromNow");
}

async function json(response) {
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
  return response.json();
}

function parseMatchers(text) {
  return text.split(/,(?=\s*\w+\s*(?:=~|!~|!=|=))/).map((part) => {
    const match = MATCHER.exec(part);
    if (!match) throw new Error(`not a matcher: ${part.trim()} (name="value", name=~"regex", != or !~)`);
    const [, name, op, value] = match;
    return {name, value, isRegex: op.includes("~"), isEqual: !op.startsWith("!")};
  });
}

function showMatchers(matchers) {
  return matchers.map((m) => `${m.name}${m.isEqual ? "" : "!"}${m.isRegex ? "~" : "="}"${m.value}"`).join(", ");
}

async function renderFiring() {
  const alerts = await json(await fetch(`${ALERTMANAGER}/alerts`));
  const body = document.querySelector("#firing tbody");
  body.replaceChildren();
  for (const alert of alerts.sort((a, b) => a.labels.alertname.localeCompare(b.labels.alertname))) {
    const row = body.insertRow();
    row.dataset.alertname = alert.labels.alertname;
    row.dataset.state = alert.status.state;
    if (alert.status.state === "suppressed") row.className = "silenced";
    const links = document.createElement("span");
    for (const [key, text] of [["runbook_url", "runbook"], ["dashboard_url", "dashboard"]]) {
      if (alert.annotations[key]) links.append(anchor(localUrl(alert.annotations[key]), text), " ");
    }
    const silence = Object.assign(document.createElement("button"), {type: "button", textContent: "Silence…"});
    silence.addEventListener("click", () => {
      const form = document.getElementById("silence");
      const keys = ["alertname", "host_name"].filter((k) => alert.labels[k]);
      form.matchers.value = keys.map((k) => `${k}="${alert.labels[k]}"`).join(", ");
      form.matchers.focus();
    });
    cells(row, [alert.labels.alertname, alert.labels.severity, alert.labels.host_name,
                alert.annotations.summary, since(alert.startsAt), alert.status.state, links, silence]);
  }
}

async function renderPending() {
  const response = await json(await fetch("/api/datasources/prometheus/api/v1/alerts"));
  const body = document.querySelector("#pending tbody");
  body.replaceChildren();
  for (const alert of response.data.alerts.filter((a) => a.state === "pending")) {
    cells(body.insertRow(), [alert.labels.alertname, alert.labels.severity, alert.labels.host_name, since(alert.activeAt)]);
  }
}

async function renderSilences() {
  const silences = await json(await fetch(`${ALERTMANAGER}/silences`));
  const body = document.querySelector("#silences tbody");
  body.replaceChildren();
  const order = {active: 0, pending: 1, expired: 2};
  silences.sort((a, b) => order[a.status.state] - order[b.status.state] || b.endsAt.localeCompare(a.endsAt));
  for (const silence of silences) {
    const row = body.insertRow();
    row.dataset.id = silence.id;
    row.dataset.state = silence.status.state;
    let expire = "";
    if (silence.status.state !== "expired") {
      expire = Object.assign(document.createElement("button"), {type: "button", textContent: "Expire"});
      expire.addEventListener("click", async () => {
        await fetch(`${ALERTMANAGER}/silence/${silence.id}`, {method: "DELETE"});
        await render();
      });
    }
    cells(row, [silence.status.state, showMatchers(silence.matchers), new Date(silence.endsAt).toLocaleString(),
                silence.createdBy, silence.comment, expire]);
  }
}

async function createSilence(event) {
  event.preventDefault();
  const form = event.target;
  const result = document.getElementById("silence-result");
  try {
    const [, amount, unit] = DURATION.exec(form.duration.value);
    const start = new Date();
    const end = new Date(start.getTime() + Number(amount) * {m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3}[unit]);
    const silence = {matchers: parseMatchers(form.matchers.value), startsAt: start.toISOString(), endsAt: end.toISOString(),
                     createdBy: form.createdBy.value, comment: form.comment.value};
    const created = await json(await fetch(`${ALERTMANAGER}/silences`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(silence)}));
    result.textContent = `silence ${created.silenceID} created`;
    result.className = "";
  } catch (error) {
    result.textContent = String(error.message || error);
    result.className = "error";
  }
  await render();
}

async function render() {
  await Promise.all([renderFiring(), renderPending().catch(() => {}), renderSilences()]);
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
}

document.getElementById("silence").addEventListener("submit", createSilence);
renderNavigation("alerts", "");
render();
setInterval(render, 15000);
