// Renders one of grafana/dashboards/*.json as Grafana would: variables, time range, auto-refresh, and the
// timeseries, stat, bargauge and table panels with their units, thresholds, mappings and overrides.
// Queries go to the selected data source's Prometheus HTTP API through the viewer's same-origin proxy.
// Each panel element carries data-state: loading, data, nodata or error (the browser tests read it).
"use strict";

const RANGES = ["5m", "15m", "1h", "3h", "6h", "12h", "24h", "2d", "7d"];
const SCRAPE_INTERVAL = 10;   // seconds: the datasources' timeInterval (grafana/provisioning)
const MAX_POINTS = 400;
const PALETTE = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0",
                 "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477"];
const COLOURS = {green: "#73bf69", orange: "#ff9830", red: "#f2495c", blue: "#5794f2", yellow: "#fade2a"};

const uid = location.pathname.split("/")[2];
const params = new URLSearchParams(location.search);
const view = {dashboard: null, datasource: null, variables: {}, options: {}, timer: null, renders: 0};

function durationSeconds(duration) {
  const match = /^(\d+)([smhdw])$/.exec(duration);
  return match ? Number(match[1]) * {s: 1, m: 60, h: 3600, d: 86400, w: 604800}[match[2]] : 0;
}

function colour(name) {
  return COLOURS[name] || name;
}

async function api(path, form) {
  const options = form ? {method: "POST", body: new URLSearchParams(form)} : {};
  const response = await fetch(`/api/datasources/${view.datasource}${path}`, options);
  const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (body.status !== "success") throw new Error(body.error || `HTTP ${response.status}`);
  return body.data;
}

// --- time range -----------------------------------------------------------------------------------------

function timeRange() {
  const from = (params.get("from") || view.dashboard.time.from).replace(/^now-/, "");
  const end = Math.floor(Date.now() / 1000);
  const span = durationSeconds(from) || 6 * 3600;
  return {from, start: end - span, end, span};
}

function builtins(range) {
  const interval = Math.max(SCRAPE_INTERVAL, Math.ceil(range.span / MAX_POINTS));
  const rate = Math.max(interval + SCRAPE_INTERVAL, 4 * SCRAPE_INTERVAL);
  return {__interval: `${interval}s`, __rate_interval: `${rate}s`, __range: `${range.span}s`,
          __range_s: String(range.span), step: interval};
}

// --- variables ------------------------------------------------------------------------------------------

function regexEscape(value) {
  return value.replace(/[\\^$*+?.()|[\]{}]/g, "\\$&").replace(/\\/g, "\\\\");
}

function variableValue(variable) {
  const chosen = view.variables[variable.name] || [];
  const multiValued = variable.multi || variable.includeAll;
  if (!multiValued) return (chosen[0] || "").replace(/\\/g, "\\\\").replace(/"/g, '\\"');
  if (chosen.includes("$__all")) {
    if (variable.allValue) return variable.allValue;
    return `(${(view.options[variable.name] || []).map(regexEscape).join("|")})`;
  }
  return `(${chosen.map(regexEscape).join("|")})`;
}

function interpolate(text, range) {
  const values = builtins(range);
  for (const variable of view.dashboard.templating.list) {
    if (variable.type === "query") values[variable.name] = variableValue(variable);
  }
  return text.replace(/\$\{?(\w+)\}?/g, (whole, name) => (name in values ? values[name] : whole));
}

async function loadOptions(variable, range) {
  const match = /^label_values\((.*),\s*(\w+)\)$/.exec(variable.query.query);
  const data = await api(`/api/v1/label/${match[2]}/values?` + new URLSearchParams(
    {"match[]": interpolate(match[1], range), start: range.start, end: range.end}));
  return data.filter((value) => value !== "").sort();
}

async function loadVariables(range) {
  for (const variable of view.dashboard.templating.list) {
    if (variable.type !== "query") continue;
    const options = await loadOptions(variable, range);
    view.options[variable.name] = options;
    const fromUrl = params.getAll(`var-${variable.name}`);
    const current = view.variables[variable.name] || fromUrl;
    if (current.length && (current.includes("$__all") || current.every((v) => options.includes(v)) || fromUrl.length)) {
      view.variables[variable.name] = current;
    } else {
      view.variables[variable.name] = variable.includeAll ? ["$__all"] : options.slice(0, 1);
    }
  }
}

// --- the toolbar and the URL ------------------------------------------------------------------------------

function saveUrl() {
  const query = new URLSearchParams();
  query.set("var-datasource", view.datasource);
  for (const [name, values] of Object.entries(view.variables)) values.forEach((v) => query.append(`var-${name}`, v));
  query.set("from", `now-${timeRange().from}`);
  query.set("to", "now");
  query.set("refresh", params.get("refresh") || view.dashboard.refresh);
  for (const key of [...params.keys()]) params.delete(key);
  query.forEach((value, key) => params.append(key, value));
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

function select(name, label, options, current, onChange) {
  const wrapper = document.createElement("label");
  wrapper.textContent = label + " ";
  const element = document.createElement("select");
  element.name = name;
  for (const [value, text] of options) element.add(new Option(text, value, false, value === current));
  element.addEventListener("change", () => onChange(element.value));
  wrapper.append(element);
  return wrapper;
}

async function renderToolbar(datasources) {
  const toolbar = document.getElementById("toolbar");
  toolbar.replaceChildren();
  toolbar.append(select("datasource", "Data source", datasources.map((d) => [d.uid, d.name]), view.datasource,
    (value) => { view.datasource = value; view.variables = {}; refresh(); }));
  for (const variable of view.dashboard.templating.list) {
    if (variable.type !== "query") continue;
    const options = (view.options[variable.name] || []).map((v) => [v, v]);
    if (variable.includeAll) options.unshift(["$__all", "All"]);
    toolbar.append(select(`var-${variable.name}`, variable.label, options, view.variables[variable.name][0],
      (value) => { view.variables[variable.name] = [value]; refresh(); }));
  }
  toolbar.append(select("from", "Last", RANGES.map((r) => [r, r]), timeRange().from,
    (value) => { params.set("from", `now-${value}`); refresh(); }));
  const intervals = ["off", ...view.dashboard.timepicker.refresh_intervals];
  toolbar.append(select("refresh", "Refresh", intervals.map((r) => [r, r]), params.get("refresh") || view.dashboard.refresh,
    (value) => { params.set("refresh", value); refresh(); }));
}

// --- panel data ---------------------------------------------------------------------------------------------

function legend(format, metric, expr) {
  if (format === "__auto" || !format) {
    const labels = Object.entries(metric).filter(([k]) => k !== "__name__");
    return labels.length ? `{${labels.map(([k, v]) => `${k}="${v}"`).join(", ")}}` : metric.__name__ || expr;
  }
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, name) => metric[name] ?? "");
}

async function runTargets(panel, range) {
  const values = builtins(range);
  return Promise.all(panel.targets.map(async (target) => {
    const query = interpolate(target.expr, range);
    const data = target.instant
      ? await api("/api/v1/query", {query, time: range.end})
      : await api("/api/v1/query_range", {query, start: range.start, end: range.end, step: values.step});
    return {target, result: data.result};
  }));
}

function fieldConfig(panel, name, refId) {
  const config = {...panel.fieldConfig.defaults, custom: {...(panel.fieldConfig.defaults.custom || {})}};
  for (const override of panel.fieldConfig.overrides || []) {
    const {id, options} = override.matcher;
    if ((id === "byName" && options === name) || (id === "byFrameRefID" && options === refId)) {
      for (const property of override.properties) {
        if (property.id.startsWith("custom.")) config.custom[property.id.slice(7)] = property.value;
        else config[property.id] = property.value;
      }
    }
  }
  return config;
}

function thresholdColour(config, value) {
  let found = null;
  for (const step of config.thresholds?.steps || []) if (step.value === null || value >= step.value) found = step.color;
  return colour(found);
}

function mapped(config, value) {
  for (const mapping of config.mappings || []) {
    if (mapping.type === "value" && mapping.options[String(value)]) return mapping.options[String(value)];
    if (mapping.type === "range") {
      const {from, to, result} = mapping.options;
      if ((from === null || value >= from) && (to === null || value <= to)) return result;
    }
  }
  return null;
}

function display(config, value) {
  const mapping = mapped(config, value);
  const fixedColour = config.color?.mode === "fixed" ? colour(config.color.fixedColor) : null;
  return {text: mapping?.text ?? formatValue(value, config.unit),
          colour: colour(mapping?.color) || fixedColour || thresholdColour(config, value)};
}

function link(url, value, range) {
  return url.replace("${__value.raw}", encodeURIComponent(value))
    .replace("${__field.labels.host_name}", encodeURIComponent(value))
    .replace("${datasource:queryparam}", `var-datasource=${view.datasource}`)
    .replace("${__url_time_range}", `from=now-${range.from}&to=now`)
    .replace(/^\/d\/([\w-]+)\/[\w-]+/, "/d/$1");
}

// --- panel kinds ----------------------------------------------------------------------------------------------

function renderStat(panel, body, results) {
  const items = results.flatMap(({target, result}) => result.map((series) => ({target, series})));
  const defaults = panel.fieldConfig.defaults;
  if (!items.length) {
    if (defaults.noValue === undefined) return false;
    body.append(statBox(defaults.noValue, null, panel));
    return true;
  }
  for (const {target, series} of items) {
    const name = legend(target.legendFormat, series.metric, target.expr);
    const config = fieldConfig(panel, name, target.refId);
    const shown = display(config, Number(series.value[1]));
    body.append(statBox(shown.text, shown.colour, panel, items.length > 1 ? name : null));
  }
  return true;
}

function statBox(text, boxColour, panel, name) {
  const box = document.createElement("div");
  box.className = "stat";
  if (boxColour && panel.options.colorMode === "background") box.style.background = boxColour;
  else if (boxColour) box.style.color = boxColour;
  box.innerHTML = `<span class="value"></span>${name ? '<span class="name"></span>' : ""}`;
  box.querySelector(".value").textContent = text;
  if (name) box.querySelector(".name").textContent = name;
  return box;
}

function renderBarGauge(panel, body, results, range) {
  const [{target, result}] = results;
  if (!result.length) return false;
  const defaults = panel.fieldConfig.defaults;
  const values = result.map((series) => Number(series.value[1]));
  const maximum = defaults.max ?? Math.max(...values, 0);
  for (const [i, series] of result.entries()) {
    const name = legend(target.legendFormat, series.metric, target.expr);
    const shown = display(defaults, values[i]);
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = '<a class="name"></a><span class="track"><span class="fill"></span></span><span class="value"></span>';
    row.querySelector(".name").textContent = name;
    if (defaults.links?.length) row.querySelector(".name").href = link(defaults.links[0].url, name, range);
    const fill = row.querySelector(".fill");
    fill.style.width = `${maximum > 0 ? Math.min(100, (100 * values[i]) / maximum) : 0}%`;
    fill.style.background = shown.colour;
    row.querySelector(".value").textContent = shown.text;
    row.querySelector(".value").style.color = shown.colour;
    body.append(row);
  }
  return true;
}

function renderTable(panel, body, results, range) {
  const organize = panel.transformations.find((t) => t.id === "organize").options;
  const order = Object.entries(organize.indexByName).sort((a, b) => a[1] - b[1]).map(([field]) => field);
  const keys = order.filter((field) => !field.startsWith("Value"));
  const rows = new Map();
  for (const {target, result} of results) {
    const field = results.length > 1 ? `Value #${target.refId}` : "Value";
    for (const series of result) {
      const key = JSON.stringify(keys.map((k) => series.metric[k] ?? ""));
      if (!rows.has(key)) rows.set(key, Object.fromEntries(keys.map((k) => [k, series.metric[k] ?? ""])));
      rows.get(key)[field] = Number(series.value[1]);
    }
  }
  if (!rows.size) return false;
  const table = document.createElement("table");
  const names = order.map((field) => organize.renameByName[field] || field);
  const head = table.createTHead().insertRow();
  for (const name of names) head.append(Object.assign(document.createElement("th"), {textContent: name}));
  const tbody = table.createTBody();
  for (const row of rows.values()) {
    const tr = tbody.insertRow();
    order.forEach((field, i) => {
      const cell = tr.insertCell();
      const config = fieldConfig(panel, names[i], null);
      const value = row[field];
      if (typeof value === "number") {
        const shown = display(config, value);
        cell.textContent = shown.text;
        cell.className = "number";
        if (config.custom.cellOptions?.type === "color-background") cell.style.background = shown.colour;
      } else if (config.links?.length && value) {
        const anchor = Object.assign(document.createElement("a"), {textContent: value, href: link(config.links[0].url, value, range)});
        cell.append(anchor);
      } else {
        cell.textContent = value ?? "";
      }
    });
  }
  body.append(table);
  return true;
}

function stacked(series) {
  const totals = [];
  return series.map((values, index) => {
    if (!series.stack[index]) return values;
    return values.map((value, i) => {
      if (value === null) return null;
      totals[i] = (totals[i] || 0) + value;
      return totals[i];
    });
  });
}

function renderTimeseries(panel, body, results, range) {
  const step = builtins(range).step;
  const xs = [];
  for (let t = range.start; t <= range.end; t += step) xs.push(t);
  const lines = [];
  for (const {target, result} of results) {
    for (const series of result) {
      const name = legend(target.legendFormat, series.metric, target.expr);
      const byTime = new Map(series.values.map(([t, v]) => [Math.round(t), Number(v)]));
      lines.push({name, config: fieldConfig(panel, name, target.refId), values: xs.map((t) => byTime.get(t) ?? null)});
    }
  }
  if (!lines.length) return false;
  const defaults = panel.fieldConfig.defaults;
  const data = lines.map((line) => line.values);
  data.stack = lines.map((line) => line.config.custom.stacking?.mode === "normal");
  const unit = lines[0].config.unit;
  const steps = defaults.custom.thresholdsStyle?.mode === "dashed" ? defaults.thresholds.steps.filter((s) => s.value !== null) : [];
  const width = Math.max(200, body.clientWidth);
  const options = {
    width, height: Math.max(120, body.clientHeight - 60),
    scales: {x: {time: true}, y: {range: (u, low, high) => [defaults.min ?? low, defaults.max ?? Math.max(high, ...steps.map((s) => s.value))]}},
    axes: [{}, {values: (u, ticks) => ticks.map((v) => formatValue(v, unit)), size: 70}],
    series: [{}, ...lines.map((line, i) => {
      const stroke = line.config.color?.mode === "fixed" ? colour(line.config.color.fixedColor) : PALETTE[i % PALETTE.length];
      const opacity = line.config.custom.fillOpacity || 0;
      // A stacked series is drawn at its running total, but its legend and hover show its own value, as Grafana's do.
      const ownValue = (u, drawn, seriesIndex, index) => formatValue(line.values[index], line.config.unit);
      const options = {label: line.name, stroke, width: 1, spanGaps: false, value: ownValue};
      if (line.config.custom.lineStyle?.dash) options.dash = line.config.custom.lineStyle.dash;
      if (opacity > 0) options.fill = stroke + Math.round(opacity * 2.55).toString(16).padStart(2, "0");
      return options;
    })],
    hooks: {draw: [(u) => drawThresholds(u, steps)]},
  };
  body.append(Object.assign(document.createElement("div"), {className: "chart"}));
  new uPlot(options, [xs, ...stacked(data)], body.lastChild);
  return true;
}

function drawThresholds(u, steps) {
  const context = u.ctx;
  for (const step of steps) {
    const y = u.valToPos(step.value, "y", true);
    context.save();
    context.strokeStyle = colour(step.color);
    context.setLineDash([6, 6]);
    context.beginPath();
    context.moveTo(u.bbox.left, y);
    context.lineTo(u.bbox.left + u.bbox.width, y);
    context.stroke();
    context.restore();
  }
}

const RENDERERS = {stat: renderStat, bargauge: renderBarGauge, table: renderTable, timeseries: renderTimeseries};

async function renderPanel(panel, element, range) {
  const body = element.querySelector(".body");
  element.dataset.state = "loading";
  try {
    const results = await runTargets(panel, range);
    body.replaceChildren();
    const hasData = RENDERERS[panel.type](panel, body, results, range);
    if (!hasData) body.replaceChildren(Object.assign(document.createElement("div"), {className: "nodata", textContent: "No data"}));
    element.dataset.state = hasData ? "data" : "nodata";
  } catch (error) {
    body.replaceChildren(Object.assign(document.createElement("div"), {className: "error", textContent: String(error.message || error)}));
    element.dataset.state = "error";
  }
}

function panelElement(panel) {
  const element = document.createElement("section");
  const {x, y, w, h} = panel.gridPos;
  element.style.gridColumn = `${x + 1} / span ${w}`;
  element.style.gridRow = `${y + 1} / span ${h}`;
  element.className = `panel ${panel.type}`;
  element.dataset.title = panel.title;
  element.innerHTML = '<h3></h3><div class="body"></div>';
  element.querySelector("h3").textContent = panel.title;
  element.querySelector("h3").title = panel.description || "";
  return element;
}

// --- the page ------------------------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(view.timer);
  const range = timeRange();
  const datasources = await (await fetch("/api/datasources")).json();
  view.datasource = view.datasource || params.get("var-datasource") || datasources[0].uid;
  try {
    await loadVariables(range);
  } catch (error) {
    document.getElementById("panels").replaceChildren(Object.assign(document.createElement("div"), {className: "error", textContent: `variables: ${error.message}`}));
    return;
  }
  saveUrl();
  await Promise.all([renderToolbar(datasources), renderNavigation(uid, `var-datasource=${view.datasource}&from=now-${range.from}&to=now`)]);
  const grid = document.getElementById("panels");
  grid.replaceChildren();
  const work = [];
  for (const panel of view.dashboard.panels) {
    const element = panelElement(panel);
    grid.append(element);
    if (panel.type !== "row") work.push(renderPanel(panel, element, range));
  }
  await Promise.all(work);
  view.renders += 1;
  document.body.dataset.renders = String(view.renders);
  const every = durationSeconds(params.get("refresh") || "");
  if (every) view.timer = setTimeout(refresh, every * 1000);
}

async function main() {
  const response = await fetch(`/api/dashboards/${uid}`);
  if (!response.ok) {
    document.getElementById("title").textContent = `No dashboard ${uid}`;
    return;
  }
  view.dashboard = await response.json();
  document.title = view.dashboard.title;
  document.getElementById("title").textContent = view.dashboard.title;
  await refresh();
}

main();
