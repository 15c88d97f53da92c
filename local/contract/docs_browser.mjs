// The API reference in a real browser: opens the local stack's /docs in Debian's Chromium (driven by
// playwright-core, no downloaded browser) and checks that the page renders every operation of
// openapi/patchbay.yaml (and every webhook, once the document has any), that nothing is logged as an
// error, that no script fails, and that the page asks nothing of any host but the stack itself (no
// CDN, no fonts). Saves a full-page screenshot.
//
// Usage: node docs_browser.mjs BASE_URL DOCUMENT.yaml SCREENSHOT.png
// Exits 1 with one line per problem.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
// The document's YAML is read with the YAML parser Redocly's CLI already brings (js-yaml).
const yaml = require("js-yaml");

const [base, docPath, screenshot] = process.argv.slice(2);
if (!base || !docPath || !screenshot) {
  console.error("usage: node docs_browser.mjs BASE_URL DOCUMENT.yaml SCREENSHOT.png");
  process.exit(2);
}
const doc = yaml.load(readFileSync(docPath, "utf8"));
const methods = ["get", "put", "post", "patch", "delete", "options", "head", "trace"];
const operations = [];
for (const item of Object.values(doc.paths ?? {})) {
  for (const m of methods) if (item[m]) operations.push(item[m]);
}
const webhooks = [];
for (const item of Object.values(doc.webhooks ?? {})) {
  for (const m of methods) if (item[m]) webhooks.push(item[m]);
}

const problems = [];
const origin = new URL(base).origin;
const browser = await chromium.launch({
  executablePath: process.env.PATCHBAY_CHROMIUM ?? "/usr/bin/chromium",
  // Chromium as root needs --no-sandbox; the rest keep it from reaching for Google's hosts, which
  // this machine's closed network refuses (and which would show as errors that are not the page's).
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`script error: ${err.message}`));
  page.on("request", (req) => {
    const url = req.url();
    if (!url.startsWith("data:") && !url.startsWith("blob:") && !url.startsWith("about:") && new URL(url).origin !== origin) {
      problems.push(`asked another host: ${req.method()} ${url}`);
    }
  });
  page.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));

  const res = await page.goto(`${base}/docs`, { waitUntil: "load" });
  if (res?.status() !== 200) problems.push(`/docs answered ${res?.status()}`);
  // Redoc renders each operation under an element whose id names its operationId.
  await page.waitForSelector(`[id="operation/${operations[0].operationId}"]`, { timeout: 20_000 }).catch(() => {});
  const missing = [];
  for (const op of operations) {
    if ((await page.locator(`[id="operation/${op.operationId}"]`).count()) === 0) missing.push(op.operationId);
  }
  if (missing.length) problems.push(`operations not rendered: ${missing.join(", ")}`);
  const missingHooks = [];
  for (const hook of webhooks) {
    const label = hook.summary ?? hook.operationId;
    if ((await page.getByText(label, { exact: false }).count()) === 0) missingHooks.push(label);
  }
  if (missingHooks.length) problems.push(`webhooks not rendered: ${missingHooks.join(", ")}`);
  const title = await page.title();
  if (title !== "Patchbay API") problems.push(`the page's title is ${JSON.stringify(title)}`);
  await page.screenshot({ path: screenshot, fullPage: false });
  // The examples are shown: an operation's request sample is the document's example, not one Redoc
  // made up from the schema.
  const op = operations.find((o) => o.operationId === "createAssistant") ?? operations[0];
  await page.goto(`${base}/docs#operation/${op.operationId}`, { waitUntil: "load" });
  const section = page.locator(`[id="operation/${op.operationId}"]`);
  await section.waitFor({ timeout: 20_000 }).catch(() => {});
  await section.scrollIntoViewIfNeeded().catch(() => {});
  const text = (await section.innerText().catch(() => "")) ?? "";
  const exampleRef = op.requestBody?.content?.["application/json"]?.examples;
  const exampleName = exampleRef && Object.values(exampleRef)[0]?.$ref?.split("/").pop();
  const example = exampleName && doc.components?.examples?.[exampleName]?.value;
  const shown = example && Object.values(example).filter((v) => typeof v === "string");
  if (!shown?.length) problems.push(`${op.operationId}: the document shows no request example to look for`);
  for (const v of shown ?? []) {
    if (!text.includes(v)) problems.push(`${op.operationId}: the request sample does not show ${JSON.stringify(v)}`);
  }
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-operation.png"), fullPage: false });
  console.log(`docs: ${operations.length} operations and ${webhooks.length} webhooks rendered; screenshot ${screenshot}`);
} finally {
  await browser.close();
}
for (const p of problems) console.log(p);
if (problems.length) {
  console.error(`docs: ${problems.length} problem(s)`);
  process.exit(1);
}
