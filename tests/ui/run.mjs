// Browser tests for the web UI: playwright-core drives the system Chromium
// against a real server (BASE_URL) seeded by seed.mjs. Each test runs in a
// fresh page; a screenshot of every test's last state (pass or fail) goes
// to ARTIFACTS. Timings are measured and printed, never asserted.
// Usage: BASE_URL=http://127.0.0.1:PORT ARTIFACTS=dir node tests/ui/run.mjs [name-filter]
// The login tests also need AUTH_BASE_URL, AUTH_USER and AUTH_PASSWORD: a
// second server started with --require-auth and that admin user.
import { createRequire } from "node:module";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { seed, sendTrace } from "./seed.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, "../../web/package.json"));
const { chromium } = require("playwright-core");

const BASE = process.env.BASE_URL;
const AUTH_BASE = process.env.AUTH_BASE_URL;
const AUTH_USER = process.env.AUTH_USER;
const AUTH_PASSWORD = process.env.AUTH_PASSWORD;
const ARTIFACTS = resolve(process.env.ARTIFACTS || "build/ui-test-artifacts");
const FILTER = process.argv[2] || "";
const TIMEOUT = 15000;
if (!BASE) throw new Error("BASE_URL is required");
mkdirSync(ARTIFACTS, { recursive: true });

function browserPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  // The Debian package's real binary; /usr/bin/chromium is a wrapper script.
  for (const p of ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"]) if (existsSync(p)) return p;
  return execFileSync("sh", ["-c", "command -v chromium"]).toString().trim();
}

function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}

async function waitFor(fn, what, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

const report = {};
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
let ids;

// ---- the server's side of the UI ------------------------------------------

test("static serving: types, caching, gzip, SPA fallback, API errors stay JSON", async () => {
  const get = (path, headers = {}) => fetch(BASE + path, { headers });
  const index = await get("/", { "Accept-Encoding": "identity" });
  assert(index.status === 200, "GET / is 200");
  assert(index.headers.get("content-type").startsWith("text/html"), "index is text/html");
  assert(index.headers.get("cache-control") === "no-cache", "index is no-cache");
  const html = await index.text();
  const js = html.match(/src="(\/assets\/[^"]+\.js)"/)[1];
  const css = html.match(/href="(\/assets\/[^"]+\.css)"/)[1];
  // fetch() would decompress transparently: read the raw bytes with node:http semantics instead.
  const raw = await new Promise((ok, fail) => {
    import("node:http").then(({ get: hget }) =>
      hget(BASE + js, { headers: { "Accept-Encoding": "gzip" } }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => ok({ headers: res.headers, body: Buffer.concat(chunks) }));
      }).on("error", fail),
    );
  });
  assert(raw.headers["content-encoding"] === "gzip", "gzip variant sent when accepted");
  assert(raw.headers["content-type"].startsWith("text/javascript"), "js content type");
  assert(/immutable/.test(raw.headers["cache-control"]), "hashed asset is immutable");
  const plain = await get(js, { "Accept-Encoding": "identity" });
  assert(!plain.headers.get("content-encoding"), "identity gets the plain file");
  const plainBody = Buffer.from(await plain.arrayBuffer());
  assert(gunzipSync(raw.body).equals(plainBody), "gzip variant decodes to the same bytes");
  report.bundle_js_bytes = plainBody.length;
  report.bundle_js_gzip_bytes = raw.body.length;
  assert((await get(css)).headers.get("content-type").startsWith("text/css"), "css content type");
  const deep = await get("/traces/abc?span=1", { Accept: "text/html" });
  assert(deep.status === 200 && (await deep.text()).includes('id="app"'), "deep link serves the app");
  const apiMiss = await get("/api/v1/nothing", { Accept: "text/html" });
  assert(apiMiss.status === 404 && (await apiMiss.json()).error.code === "not_found", "API 404 stays JSON");
  const noHtml = await get("/nope", { Accept: "*/*" });
  assert(noHtml.status === 404 && (await noHtml.json()).error.code === "not_found", "non-browser 404 stays JSON");
  const wrong = await get("/v1/traces", { Accept: "text/html" });
  assert(wrong.status === 405, "GET on an ingest path is still 405");
  const head = await fetch(BASE + "/", { method: "HEAD" });
  assert(head.status === 200 && (await head.text()) === "", "HEAD / has headers only");
});

// ---- pages ----------------------------------------------------------------------

test("dashboard loads with charts and breakdowns", async (page) => {
  await page.goto(BASE + "/");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await page.locator(".card-label", { hasText: "Requests" }).waitFor();
  await waitFor(async () => (await page.locator(".chart canvas").count()) >= 6, "six charts");
  await page.locator("section[aria-label='By model'] td", { hasText: "gpt-4o-mini" }).first().waitFor();
  await page.locator("section[aria-label='By user'] td", { hasText: "alice" }).first().waitFor();
  await page.locator("section[aria-label='By feature'] td", { hasText: "qa" }).first().waitFor();
  await page.locator("section[aria-label='Daily token burn']").getByText("projected 30 days").waitFor();
  // The seeded data is hours old, not 30 days: the rate counts from its start.
  await page.locator("section[aria-label='Daily token burn'] .burn").getByText(/, since \d{4}-\d\d-\d\d/).waitFor();
  // The range picker refetches.
  await page.getByLabel("Time range").selectOption("7d");
  await page.waitForURL(/range=7d/);
  await page.locator(".card-label", { hasText: "Requests" }).waitFor();
  assert((await page.locator("[role=alert]").count()) === 0, "no error on the dashboard");
});

test("traces list: 100 rows, render time, filters, sorting", async (page) => {
  await page.goto(BASE + "/traces");
  await waitFor(async () => (await page.locator("table.traces tbody tr").count()) === 100, "100 rows");
  const perf = await waitFor(() => page.evaluate(() => window.__lanterna && window.__lanterna.listPaintMs !== undefined && window.__lanterna), "render timing");
  report.list_100_rows_dom_ms = +perf.listDomMs.toFixed(1);
  report.list_100_rows_paint_ms = +perf.listPaintMs.toFixed(1);
  await page.getByRole("button", { name: "Load more" }).click();
  await waitFor(async () => (await page.locator("table.traces tbody tr").count()) > 100, "second page appended");

  await page.getByLabel("Model").fill("claude-3-5-sonnet-20241022");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/model=claude/);
  await waitFor(async () => {
    const cells = await page.locator("table.traces tbody tr td:nth-child(5)").allTextContents();
    return cells.length > 0 && cells.every((c) => c.includes("claude-3-5-sonnet"));
  }, "only claude traces");

  // The same 100 rows again, now that the app is warm.
  await page.evaluate(() => { window.__lanterna = {}; });
  await page.getByRole("button", { name: "Reset" }).click();
  await waitFor(async () => (await page.locator("table.traces tbody tr").count()) === 100, "100 rows again");
  const warm = await waitFor(() => page.evaluate(() => window.__lanterna.listPaintMs !== undefined && window.__lanterna), "render timing");
  report.list_100_rows_warm_dom_ms = +warm.listDomMs.toFixed(1);
  report.list_100_rows_warm_paint_ms = +warm.listPaintMs.toFixed(1);
  await page.getByLabel("Status").selectOption("error");
  await waitFor(async () => {
    const names = await page.locator("table.traces tbody tr td:nth-child(2)").allTextContents();
    return names.length === 1 && names[0] === "summarise ticket";
  }, "the one error trace");

  await page.goto(BASE + "/traces?q=Lisbon");
  await page.locator("table.traces tbody tr td", { hasText: "answer question" }).first().waitFor();
  await page.goto(BASE + "/traces?feedback=down");
  await waitFor(async () => (await page.locator("table.traces tbody tr").count()) === 1, "thumbs-down filter");
  await page.goto(BASE + "/traces?score_name=faithfulness&score_min=0.8");
  await waitFor(async () => (await page.locator("table.traces tbody tr").count()) === 1, "score filter");

  await page.goto(BASE + "/traces");
  await page.getByRole("button", { name: /Duration/ }).click();
  await page.waitForURL(/sort=duration/);
  await waitFor(async () => (await page.locator("th[aria-sort=descending]").textContent()).includes("Duration"), "sorted by duration");
  await waitFor(async () => (await page.locator("table.traces tbody tr td:nth-child(2)").first().textContent()) === "big agent run", "longest first");
});

test("traces table keyboard navigation", async (page) => {
  await page.goto(BASE + "/traces");
  await waitFor(async () => (await page.locator("table.traces tbody tr").count()) === 100, "rows");
  // Tab from the last filter control reaches the table's one tabbable row.
  await page.getByRole("button", { name: "Reset" }).focus();
  await page.keyboard.press("Tab");
  for (let i = 0; i < 5 && !(await page.evaluate(() => document.activeElement?.tagName === "TR")); i++) await page.keyboard.press("Tab");
  assert(await page.evaluate(() => document.activeElement?.tagName === "TR"), "a row takes focus by Tab");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowUp");
  const idx = await page.evaluate(() => [...document.activeElement.parentElement.children].indexOf(document.activeElement));
  assert(idx === 1, `second row focused (got ${idx})`);
  const name = await page.evaluate(() => document.activeElement.querySelector("td:nth-child(2)").textContent);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/traces\/[0-9a-f]{32}/);
  await page.getByRole("heading", { level: 1, name: new RegExp(name) }).waitFor();
});

test("trace view: waterfall, chat with tool call, documents, scores, JSON tree", async (page) => {
  await page.goto(BASE + "/traces?user=alice");
  await page.locator("table.traces a", { hasText: "answer question" }).last().click();
  await page.waitForURL(new RegExp(`/traces/${ids.rag.traceId}`));
  const wf = page.getByRole("listbox", { name: /Spans/ });
  await wf.waitFor();
  assert((await wf.getByRole("option").count()) === 5, "five spans in the waterfall");
  assert((await page.locator(".wf-row span.kind.kind-retriever").count()) === 1 && (await page.locator(".wf-row span.kind.kind-tool").count()) === 1, "kind icons");
  await page.getByRole("table", { name: "Scores" }).getByText("faithfulness").waitFor();

  await wf.getByRole("option").nth(2).click();
  await page.waitForURL(new RegExp(`span=${ids.rag.llm}`));
  const chat = page.getByRole("list", { name: "Input messages" });
  await chat.getByText("You are a helpful weather assistant.").waitFor();
  assert((await chat.locator(".role").allTextContents()).join(",") === "system,user", "input roles");
  const out = page.getByRole("list", { name: "Output messages" });
  await out.getByText("get_weather").waitFor();
  await out.getByText('"city": "Lisbon"').waitFor();
  await page.locator(".span-panel").getByText("gpt-4o-mini (openai)").waitFor();
  await page.locator(".span-panel").getByText(/computed|unknown/).first().waitFor();
  await page.locator(".span-panel table[aria-label=Scores]").getByText("valid_json").waitFor();
  // Raw attributes: collapsed, opens to show the keys.
  await page.locator(".span-panel summary", { hasText: "Attributes" }).click();
  await page.locator(".span-panel .json-tree").getByText("llm.model_name", { exact: false }).first().waitFor();
  await page.screenshot({ path: join(ARTIFACTS, "trace-llm-span.png"), fullPage: true });

  await wf.getByRole("option").nth(1).click();
  const docs = page.getByRole("list", { name: "retrieved documents" });
  await docs.getByText("kb-142").waitFor();
  await docs.getByText("score 0.873").waitFor();
  await page.screenshot({ path: join(ARTIFACTS, "trace-retriever-span.png"), fullPage: true });

  await wf.getByRole("option").nth(3).click();
  await page.locator(".span-panel pre.text", { hasText: '{"temp_c":18,"sky":"sunny"}' }).last().waitFor();

  // The waterfall is keyboard operable too.
  await wf.focus();
  await page.keyboard.press("Home");
  await page.waitForURL(/span=/);
  await page.keyboard.press("ArrowDown");
  await page.waitForURL(new RegExp(`span=${ids.rag.retriever}`));
});

test("deep link to a span", async (page) => {
  await page.goto(`${BASE}/traces/${ids.rag.traceId}?span=${ids.rag.tool}`);
  await page.locator(".span-panel h2", { hasText: "get_weather" }).waitFor();
  assert((await page.locator(`#wf-${ids.rag.tool}`).getAttribute("aria-selected")) === "true", "deep-linked span selected");
  // Back/forward walk the selection history of the app's own links.
  await page.locator(".crumbs a", { hasText: "Traces" }).click();
  await page.waitForURL(/\/traces$/);
  await page.goBack();
  await page.locator(".span-panel h2", { hasText: "get_weather" }).waitFor();
});

test("errors: highlighted error spans", async (page) => {
  await page.goto(`${BASE}/traces/${ids.errorTraceId}`);
  await page.locator(".wf-row.error").first().waitFor();
  await page.locator(".wf-row.error", { hasText: "ChatAnthropic" }).click();
  await page.getByRole("alert").getByText("rate limited (429)").waitFor();
});

test("not-found pages", async (page) => {
  await page.goto(`${BASE}/traces/0123456789abcdef0123456789abcdef`);
  await page.getByRole("heading", { name: "Trace not found" }).waitFor();
  await page.goto(`${BASE}/traces/not-a-trace-id`);
  await page.getByRole("heading", { name: "Trace not found" }).waitFor();
  await page.goto(`${BASE}/sessions/no-such-session`);
  await page.getByRole("heading", { name: "Session not found" }).waitFor();
  await page.goto(`${BASE}/no/such/page`);
  await page.getByRole("heading", { name: "Page not found" }).waitFor();
});

test("API errors are shown as messages", async (page) => {
  await page.goto(`${BASE}/traces?min_duration_ms=abc`);
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert(/Error 400/.test(await alert.textContent()), "a 400 is shown with its status");
  // A bad key is refused even on loopback: the page says what to do.
  await page.goto(`${BASE}/settings`);
  await page.getByLabel("Secret key").fill("sk-lt-not-a-real-key");
  await page.getByRole("button", { name: "Save" }).click();
  await page.goto(`${BASE}/traces`);
  await page.getByRole("alert").getByText(/Set an API key in Settings/).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, "error-401.png") });
  await page.goto(`${BASE}/settings`);
  await page.getByRole("button", { name: "Clear" }).click();
  await page.goto(`${BASE}/traces`);
  await page.locator("table.traces tbody tr").first().waitFor();
  // A server that is gone: a message, not a blank page.
  await page.route("**/api/v1/traces**", (route) => route.abort());
  await page.reload();
  await page.getByRole("alert").getByText(/Cannot reach the Lanterna server/).waitFor();
});

test("a trace over the view's 10,000 spans says it shows only the first", async (page) => {
  await page.goto(`${BASE}/traces/${ids.longTraceId}`);
  await page.getByRole("note").getByText(/showing the first 10,000 by start time/).waitFor();
  const wf = page.getByRole("listbox", { name: /Spans/ });
  assert((await wf.getAttribute("data-span-count")) === "10000", "10,000 spans loaded");
  await page.goto(`${BASE}/traces/${ids.bigTraceId}`);
  await page.getByRole("listbox", { name: /Spans/ }).waitFor();
  assert((await page.getByRole("note").count()) === 0, "a whole trace has no such note");
});

test("2,000-span trace renders virtualised and scrolls", async (page) => {
  const t0 = Date.now();
  await page.goto(`${BASE}/traces/${ids.bigTraceId}`);
  const wf = page.getByRole("listbox", { name: /Spans/ });
  await wf.waitFor();
  report.trace_2000_spans_load_ms = Date.now() - t0;
  assert((await wf.getAttribute("data-span-count")) === "2000", "2,000 spans loaded");
  const inDom = await page.locator(".wf-row").count();
  assert(inDom < 150, `only visible rows are in the DOM (${inDom})`);
  // Scroll through it frame by frame and measure frame times.
  const frames = await page.evaluate(async () => {
    const el = document.querySelector(".wf-body");
    const times = [];
    let last = performance.now();
    for (let i = 0; i < 60; i++) {
      el.scrollTop += el.scrollHeight / 60;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      times.push(now - last);
      last = now;
    }
    times.sort((a, b) => a - b);
    return { p50: times[30], max: times[59] };
  });
  report.trace_2000_scroll_frame_p50_ms = +frames.p50.toFixed(1);
  report.trace_2000_scroll_frame_max_ms = +frames.max.toFixed(1);
  // At the bottom, the last of the 2,000 rows is in the DOM.
  const lastRow = page.locator(`.wf-row[style*="top: ${1999 * 26}px"]`);
  await lastRow.waitFor();
  const lastName = (await lastRow.locator(".wf-label").textContent()).trim();
  await page.screenshot({ path: join(ARTIFACTS, "trace-2000-spans-scrolled.png") });
  await wf.focus();
  await page.keyboard.press("Home");
  await page.locator(".span-panel h2", { hasText: "big agent run" }).waitFor();
  await page.keyboard.press("End");
  await page.locator(".span-panel h2", { hasText: lastName }).waitFor();
  // Collapsing the root hides the rest.
  await page.keyboard.press("Home");
  await page.keyboard.press("ArrowLeft");
  await waitFor(async () => (await page.locator(".wf-row").count()) === 1, "collapsed to the root");
});

test("huge payloads are cut with a show-all", async (page) => {
  await page.goto(`${BASE}/traces/${ids.hugeTraceId}`);
  const btn = page.getByRole("button", { name: /Show all \(50,010 characters\)/ });
  await btn.waitFor();
  const before = await page.locator(".span-panel pre.text").last().textContent();
  await btn.click();
  const after = await page.locator(".span-panel pre.text").last().textContent();
  assert(before.length < 3000 && after.length >= 50010, `expanded ${before.length} -> ${after.length}`);
});

test("sessions: conversation turn by turn", async (page) => {
  await page.goto(`${BASE}/sessions`);
  await page.locator("a", { hasText: "sess-1" }).click();
  await page.waitForURL(/\/sessions\/sess-1/);
  const turns = page.getByRole("list", { name: "Conversation" }).locator("li.turn");
  await waitFor(async () => (await turns.count()) === 3, "three turns");
  await turns.first().getByText("What is the weather in Lisbon?").waitFor();
  await turns.first().getByText("It is 18°C and sunny in Lisbon today.").waitFor();
});

test("users: usage and cost per user", async (page) => {
  await page.goto(`${BASE}/users`);
  const t = page.getByRole("table", { name: "Usage per user" });
  await t.locator("a", { hasText: "alice" }).waitFor();
  await t.locator("a", { hasText: "bob" }).click();
  await page.waitForURL(/\/traces\?user=bob/);
  await page.locator("table.traces tbody tr td", { hasText: "summarise ticket" }).waitFor();
});

test("settings: price overrides and unpriced models", async (page) => {
  await page.goto(`${BASE}/settings`);
  await page.getByRole("table", { name: "Unpriced models" }).getByText("my-finetune-x").waitFor();
  await page.getByLabel(/Add an override layer/).fill('{"version":1,"models":[{"match":"my-finetune-*","provider":"openai","input":3.0,"output":12.0}]}');
  await page.getByRole("button", { name: "Add override" }).click();
  await page.getByRole("status").getByText("Override added.").waitFor();
  await page.getByRole("table", { name: "Price overrides" }).getByText("my-finetune-*").waitFor();
  await page.getByLabel("Model", { exact: true }).fill("my-finetune-x");
  await page.getByLabel("Provider").fill("openai");
  await page.getByRole("button", { name: "Look up price" }).click();
  await page.getByLabel("Price", { exact: true }).getByText("my-finetune-*").waitFor();
  await page.getByLabel(/Add an override layer/).fill("{not json");
  await page.getByRole("button", { name: "Add override" }).click();
  await page.getByRole("alert").getByText(/Error 400/).waitFor();
  await page.getByRole("button", { name: /Delete all overrides/ }).click();
  await page.getByRole("button", { name: /Confirm/ }).click();
  await page.getByRole("status").getByText("Overrides deleted.").waitFor();
  await page.getByRole("heading", { name: "Projects and API keys" }).waitFor();
});

// One small OTLP/JSON trace, sent with a key.
async function ingestWith(base, secret, name) {
  const now = BigInt(Date.now()) * 1000000n;
  const payload = { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [{
    traceId: [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join(""),
    spanId: [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join(""),
    name, kind: 1, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000000n) }] }] }] };
  return fetch(base + "/v1/traces", { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${secret}` }, body: JSON.stringify(payload) });
}

test("settings: create and revoke an API key", async (page) => {
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  await page.goto(`${BASE}/settings`);
  const projects = page.getByRole("table", { name: "Projects" });
  await projects.getByRole("cell", { name: "default", exact: true }).waitFor();
  const proj = "ui-" + Date.now().toString(36);
  await page.getByLabel("New project name").fill(proj);
  await page.getByRole("button", { name: "Create project" }).click();
  await projects.getByRole("cell", { name: proj, exact: true }).waitFor();
  await page.getByLabel("Project of the new key").selectOption(proj);
  await page.getByRole("button", { name: "Create key" }).click();
  const box = page.getByRole("region", { name: "New API key" });
  await box.getByText("it is shown only once").waitFor();
  const secret = (await box.getByLabel("Secret key value").textContent()).trim();
  assert(/^sk-lt-[0-9A-Za-z]{32}$/.test(secret), `a secret key is shown (${secret.slice(0, 8)}…)`);
  await box.getByRole("button", { name: "Copy secret key" }).click();
  await box.getByRole("status").waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => ""));
  assert(copied === secret, "the copy button puts the secret on the clipboard");
  await page.screenshot({ path: join(ARTIFACTS, "settings-new-key.png"), fullPage: true });
  // The key works for ingest and reads its own (new, empty-but-for-this) project.
  assert((await ingestWith(BASE, secret, "sent with a UI-made key")).status === 200, "ingest with the new key");
  const mine = await (await fetch(`${BASE}/api/v1/traces`, { headers: { Authorization: `Bearer ${secret}` } })).json();
  assert(mine.data.length === 1 && mine.data[0].name === "sent with a UI-made key", "the key sees its project's trace");
  // The secret is not shown again after a reload; the key is listed by its public part.
  await box.getByRole("button", { name: "Done" }).click();
  await page.reload();
  const row = page.getByRole("table", { name: "API keys" }).locator("tr", { hasText: proj });
  await row.waitFor();
  assert(!(await page.content()).includes(secret), "the secret is gone after a reload");
  // Revoke, with a confirmation step.
  await row.getByRole("button", { name: /^Revoke/ }).click();
  await row.getByRole("button", { name: "Cancel" }).click();
  await row.getByRole("button", { name: /^Revoke/ }).click();
  await row.getByRole("button", { name: "Confirm revoke" }).click();
  await row.getByText(/^revoked/).waitFor();
  await waitFor(async () => (await fetch(`${BASE}/api/v1/traces`, { headers: { Authorization: `Bearer ${secret}` } })).status === 401, "the revoked key to be refused", 5000);
  assert((await ingestWith(BASE, secret, "after revoke")).status === 401, "ingest with a revoked key is refused");
});

test("log in when auth is on", async (page) => {
  assert(AUTH_BASE && AUTH_USER && AUTH_PASSWORD, "AUTH_BASE_URL, AUTH_USER and AUTH_PASSWORD are set (scripts/ui-test.sh)");
  assert((await fetch(`${AUTH_BASE}/api/v1/traces`)).status === 401, "the server refuses anonymous requests");
  await page.goto(`${AUTH_BASE}/traces`);
  await page.getByRole("heading", { name: "Log in to Lanterna" }).waitFor();
  assert((await page.locator("nav[aria-label=Main]").count()) === 0, "no app before the login");
  await page.getByLabel("User name").fill(AUTH_USER);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").getByText("wrong user name or password").waitFor();
  await page.screenshot({ path: join(ARTIFACTS, "login-wrong-password.png") });
  await page.getByLabel("Password").fill(AUTH_PASSWORD);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Traces" }).waitFor();
  await page.getByText(`Signed in as ${AUTH_USER}`).waitFor();
  assert((await page.locator("[role=alert]").count()) === 0, "the trace list loads with the session");
  const cookies = await page.context().cookies(AUTH_BASE);
  const sess = cookies.find((c) => c.name === "lt_session");
  const csrf = cookies.find((c) => c.name === "lt_csrf");
  assert(sess && sess.httpOnly && sess.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");
  assert(csrf && !csrf.httpOnly && csrf.sameSite === "Strict", "the CSRF cookie is SameSite=Strict and readable by the page");
  assert(!(await page.evaluate(() => document.cookie)).includes(sess.value), "scripts cannot read the session secret");
  // Writes through the session carry the CSRF token: make a key in Settings.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = (await page.getByRole("region", { name: "New API key" }).getByLabel("Secret key value").textContent()).trim();
  assert(/^sk-lt-/.test(secret), "a key was made with the session");
  // The same write without the token is refused.
  const status = await page.evaluate(async () =>
    (await fetch("/api/v1/projects", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"name":"no-csrf"}' })).status);
  assert(status === 403, `a cookie write without the CSRF header is 403 (got ${status})`);
  await page.screenshot({ path: join(ARTIFACTS, "login-settings.png"), fullPage: true });
  // Logging out ends the session on the server too.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("heading", { name: "Log in to Lanterna" }).waitFor();
  await waitFor(async () => (await fetch(`${AUTH_BASE}/api/v1/traces`, { headers: { Cookie: `lt_session=${sess.value}` } })).status === 401,
    "the old session to be refused", 5000);
  // A pasted API key still works instead of a login.
  await page.getByRole("button", { name: "Use an API key instead" }).click();
  await page.getByLabel("Secret key").fill(secret);
  await page.getByRole("button", { name: "Use this key" }).click();
  await page.getByRole("heading", { name: "Settings" }).waitFor();
  await page.goto(`${AUTH_BASE}/traces`);
  await page.getByRole("heading", { name: "Traces" }).waitFor();
  await page.locator("table.traces, .empty").first().waitFor();
  assert((await page.locator("[role=alert]").count()) === 0, "the pasted key reads the API");
});

test("live tail shows new traces", async (page) => {
  await page.goto(`${BASE}/traces?live=1`);
  await page.locator("table.traces tbody tr").first().waitFor();
  await sendTrace(BASE, "live tail arrival");
  await page.locator("table.traces tbody tr td", { hasText: "live tail arrival" }).waitFor();
});

test("feedback from the trace view", async (page) => {
  await page.goto(`${BASE}/traces/${ids.hugeTraceId}`);
  await page.getByRole("button", { name: "Thumbs down" }).click();
  await page.getByRole("table", { name: "Scores" }).getByText("user_feedback").waitFor();
});

// ---- runner -------------------------------------------------------------------------

const browser = await chromium.launch({ executablePath: browserPath(), headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
let failed = 0;
try {
  const t = Date.now();
  ids = await seed(BASE);
  report.seed_ms = Date.now() - t;
  for (const { name, fn } of tests) {
    if (FILTER && !name.includes(FILTER)) continue;
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    context.setDefaultTimeout(TIMEOUT);
    const page = await context.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    const started = Date.now();
    const slug = name.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").toLowerCase();
    try {
      await fn(page);
      assert(pageErrors.length === 0, "no uncaught page errors: " + pageErrors.join("; "));
      console.log(`ok   ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}\n     ${String(e.stack || e).split("\n").slice(0, 6).join("\n     ")}`);
    } finally {
      await page.screenshot({ path: join(ARTIFACTS, `${slug}.png`), fullPage: true }).catch(() => {});
      await context.close();
    }
  }
} finally {
  await browser.close();
}
writeFileSync(join(ARTIFACTS, "report.json"), JSON.stringify(report, null, 2) + "\n");
console.log("measurements:", JSON.stringify(report));
console.log(failed ? `${failed} UI test(s) failed` : "all UI tests passed");
process.exit(failed ? 1 : 0);
