// Drives Debian's Chromium with playwright-core (viewer/node_modules) through the dashboard viewer; prints JSON.
//   node tests/ui/browse.mjs dashboards BASE_URL SCREENSHOT_DIR   every dashboard on Prometheus, then switched
//                                                                 to VictoriaMetrics: each panel's title and state
//   node tests/ui/browse.mjs silence BASE_URL ALERTNAME           silence ALERTNAME for 1h through the alerts page
//   node tests/ui/browse.mjs evaluate BASE_URL PATH EXPRESSION…   each EXPRESSION's value in the page PATH
//   node tests/ui/browse.mjs panel BASE_URL PATH TITLE            the panel TITLE of the page PATH, its chart hovered:
//                                                                 its state, table cells and legend (label: value)
// evaluate and panel stop the page's clock on a whole second, so that durations read exactly ("10 min ago").
import {createRequire} from "node:module";
import {mkdtempSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";

const require = createRequire(new URL("../../viewer/package.json", import.meta.url));
const {chromium} = require("playwright-core");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// With an empty profile (launchPersistentContext's directory); without these flags Chromium reaches out to the internet (updates, sync, field trials).
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TIMEOUT = 60000;

async function panels(page) {
  return page.$$eval("section.panel:not(.row)", (sections) => sections.map((s) => ({
    title: s.dataset.title, state: s.dataset.state, text: s.querySelector(".body").innerText.slice(0, 200)})));
}

async function rendered(page, count) {
  await page.waitForFunction((n) => Number(document.body.dataset.renders || 0) >= n, count, {timeout: TIMEOUT});
}

async function dashboards(page, base, shots) {
  const listed = await (await fetch(`${base}/api/dashboards`)).json();
  const result = [];
  for (const {uid} of listed) {
    await page.goto(`${base}/d/${uid}?var-datasource=prometheus&from=now-15m&to=now&refresh=off`);
    await rendered(page, 1);
    await page.waitForTimeout(300);
    await page.screenshot({path: join(shots, `${uid}.png`), fullPage: true});
    result.push({uid, datasource: "prometheus", panels: await panels(page)});
    await page.selectOption("select[name=datasource]", "victoriametrics");
    await rendered(page, 2);
    result.push({uid, datasource: "victoriametrics", url: page.url(), panels: await panels(page)});
  }
  return result;
}

async function silence(page, base, alertname) {
  await page.goto(`${base}/alerts`);
  await rendered(page, 1);
  await page.fill("input[name=matchers]", `alertname="${alertname}"`);
  await page.fill("input[name=duration]", "1h");
  await page.click("#silence button[type=submit]");
  await page.waitForSelector("#silences tr[data-state=active]", {timeout: TIMEOUT});
  return {result: await page.textContent("#silence-result"),
          silences: await page.$$eval("#silences tbody tr", (rows) => rows.map((r) => r.innerText))};
}

async function openOnFixedClock(page, url) {
  await page.clock.setFixedTime(Math.floor(Date.now() / 1000) * 1000);
  await page.goto(url);
  await rendered(page, 1);
}

async function evaluate(page, base, path, ...expressions) {
  await openOnFixedClock(page, base + path);
  const values = [];
  for (const expression of expressions) values.push(await page.evaluate(expression));
  return values;
}

async function panel(page, base, path, title) {
  await openOnFixedClock(page, base + path);
  const section = page.locator(`section.panel[data-title="${title}"]`);
  if (await section.locator(".u-over").count()) {
    await section.locator(".u-over").hover();
    await page.waitForFunction((element) => [...element.querySelectorAll(".u-legend .u-value")].every((v) => v.textContent),
                               await section.elementHandle(), {timeout: TIMEOUT});
  }
  return section.evaluate((element) => ({
    state: element.dataset.state,
    cells: [...element.querySelectorAll(".body > table tr")].map((row) => [...row.cells].map((cell) => cell.innerText)),
    legend: Object.fromEntries([...element.querySelectorAll(".u-legend .u-series")].map(
      (row) => [row.querySelector(".u-label").textContent, row.querySelector(".u-value").textContent])),
  }));
}

const MODES = {dashboards, silence, evaluate, panel};
const [mode, base, ...rest] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "chromium-")), {
  executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: {width: 1600, height: 1000}});
try {
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  const output = await MODES[mode](page, base, ...rest);
  console.log(JSON.stringify({output, errors}));
} finally {
  await context.close();
}
