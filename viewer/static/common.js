// Shared by the pages: values formatted as Grafana's unit ids do (packages/grafana-data valueFormats), and the top navigation.
"use strict";

function decimals(value) {
  const size = Math.abs(value);
  return size >= 100 || Number.isInteger(value) ? 0 : size >= 10 ? 1 : 2;
}

function fixed(value) {
  return value.toFixed(decimals(value));
}

function scaled(value, factor, suffixes) {
  let index = 0;
  while (Math.abs(value) >= factor && index < suffixes.length - 1) {
    value /= factor;
    index += 1;
  }
  return fixed(value) + suffixes[index];
}

const SI = (unit) => (v) => scaled(v, 1000, ["", " k", " M", " G", " T", " P"].map((p) => `${p}${unit}`.replace(/^ /, " ")));
const IEC = (unit) => (v) => scaled(v, 1024, [" ", " Ki", " Mi", " Gi", " Ti", " Pi"].map((p) => p + unit));

function seconds(value) {
  const size = Math.abs(value);
  if (size === 0) return "0 s";
  if (size < 1e-3) return fixed(value * 1e6) + " µs";
  if (size < 1) return fixed(value * 1e3) + " ms";
  if (size < 60) return fixed(value) + " s";
  if (size < 3600) return fixed(value / 60) + " min";
  if (size < 86400) return fixed(value / 3600) + " hour";
  if (size < 604800) return fixed(value / 86400) + " day";
  return fixed(value / 604800) + " week";
}

function fromNow(epochMilliseconds) {
  const ago = (Date.now() - epochMilliseconds) / 1000;
  return ago < 0 ? "in the future" : seconds(ago) + " ago";
}

const FORMATS = {
  none: fixed,
  short: (v) => scaled(v, 1000, ["", " K", " Mil", " Bil", " Tri"]),
  percent: (v) => fixed(v) + "%",
  percentunit: (v) => fixed(v * 100) + "%",
  bytes: IEC("B"),
  decbytes: SI("B"),
  Bps: SI("B/s"),
  binBps: IEC("B/s"),
  pps: SI("p/s"),
  iops: SI("io/s"),
  ops: SI("ops/s"),
  reqps: SI("req/s"),
  rps: SI("rd/s"),
  wps: SI("wr/s"),
  cps: SI("c/s"),
  s: seconds,
  ms: (v) => seconds(v / 1000),
  d: (v) => fixed(v) + " day",
  dtdurations: seconds,
  dateTimeFromNow: fromNow,
};

function formatValue(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return (FORMATS[unit] || FORMATS.none)(value);
}

async function renderNavigation(currentUid, query) {
  const dashboards = await (await fetch("/api/dashboards")).json();
  const nav = document.getElementById("links");
  nav.replaceChildren();
  for (const [href, title, current] of [...dashboards.map((d) => [`/d/${d.uid}?${query}`, d.title, d.uid === currentUid]),
                                        ["/alerts", "Alerts", currentUid === "alerts"]]) {
    nav.append(Object.assign(document.createElement("a"), {href, textContent: title, className: current ? "current" : ""}));
  }
}
