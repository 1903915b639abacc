// Drives Debian's chromium (headless, through playwright-core) through
// Drover's web UI for integration/e2e/tests/ui.rs, against a live `drover
// serve` on a real Mesos cluster that the Rust test set up.
//
//   node ui.mjs '{"url": "http://127.0.0.1:PORT", "app": "/ui-demo",
//                 "waitingApp": "/ui-waiting", "healthyApp": "/web/api", "job": "ui-nightly",
//                 "childJob": "ui-publish", "out": "/path/to/screenshots"}'
//
// Checks: the app shows 1 running; scaling it to 2 through the confirmation
// dialog makes the page show 2 running without a reload (the event stream);
// the app's tasks; an API error (a locked app) shown in the dialog; the
// launch queue's reject reason; jobs with their dependency graph; running a
// job now and its run history. Screenshots go to `out` (ui-apps-overview.png
// is the one in docs/). On failure it prints
// what failed, the page's console, failed requests and a DOM snippet, saves
// failure.png, and exits 1. $DROVER_CHROMIUM overrides /usr/bin/chromium.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2] || '{}');
for (const key of ['url', 'app', 'waitingApp', 'healthyApp', 'job', 'childJob', 'out']) {
  if (!cfg[key]) {
    console.error(`ui.mjs: missing "${key}" in the JSON argument`);
    process.exit(2);
  }
}
const executablePath = process.env.DROVER_CHROMIUM || '/usr/bin/chromium';
// The whole run must end well before the Rust test's own timeout.
const DEADLINE_MS = 240_000;
const started = Date.now();

mkdirSync(cfg.out, { recursive: true });
const log = (msg) => console.log(`[ui.mjs +${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

const consoleLines = [];
const pageErrors = [];
const badResponses = [];

const browser = await chromium.launch({
  executablePath,
  headless: true,
  chromiumSandbox: false, // root in CI: chromium's sandbox needs --no-sandbox
  timeout: 60_000,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-features=Translate,MediaRouter,OptimizationHints',
  ],
});
const overall = setTimeout(() => {
  console.error(`ui.mjs: gave up after ${DEADLINE_MS / 1000}s`);
  browser.close().finally(() => process.exit(1));
}, DEADLINE_MS);

const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, colorScheme: 'light' });
const page = await context.newPage();
page.setDefaultTimeout(30_000);
page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => pageErrors.push(String(e.stack || e)));
page.on('requestfailed', (r) => {
  // The event stream is aborted when the page closes; that is not a failure.
  if (!r.url().includes('/v2/events')) badResponses.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
});
page.on('response', (r) => {
  if (r.status() >= 400) badResponses.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
});

/** Waits until `fn(arg)` is truthy in the page; the error names `what` and what was seen. */
async function until(what, fn, arg, timeout = 60_000, seen = null) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 250 });
  } catch (e) {
    let last = '';
    if (seen) last = ` (last seen: ${JSON.stringify(await page.evaluate(seen, arg).catch((x) => String(x)))})`;
    const why = e.name === 'TimeoutError' ? `timed out after ${timeout / 1000}s` : `failed (${e.message.split('\n')[0]})`;
    throw new Error(`${why} waiting for ${what}${last}`);
  }
}

// Page functions run in the page: they share this helper through an init script.
await context.addInitScript(() => {
  window.e2eCell = ([id, testid]) =>
    document.querySelector(`tr[data-app-id="${id}"] [data-testid="${testid}"]`)?.textContent?.trim() ?? null;
});

async function screenshot(name) {
  const path = join(cfg.out, name);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
  return path;
}

/** Clicks the dialog's confirm button and waits for it to close; a dialog error fails. */
async function confirmDialog(what) {
  await page.getByTestId('dialog-confirm').click();
  try {
    await page.waitForFunction(() => !document.getElementById('dialog').open, null, { timeout: 30_000, polling: 100 });
  } catch {
    const error = await page.getByTestId('dialog-error').textContent().catch(() => '');
    throw new Error(`the dialog to ${what} did not close: ${error || 'no error shown'}`);
  }
}

const shots = [];
try {
  // 1. The apps page shows the app with 1 running task.
  log(`loading ${cfg.url}/ui`);
  await page.goto(`${cfg.url}/ui`, { waitUntil: 'domcontentloaded' });
  if (!new URL(page.url()).pathname.endsWith('/ui/')) throw new Error(`/ui did not lead to /ui/ but to ${page.url()}`);
  await until(`${cfg.app} with 1 running task`, (a) => window.e2eCell(a) === '1', [cfg.app, 'app-running'], 60_000,
    (a) => window.e2eCell(a));
  await until('the event stream to connect', () => document.getElementById('live').dataset.state === 'live', null,
    30_000, () => document.getElementById('live').textContent.trim());
  log('the app shows 1 running; the event stream is live');

  // 2. Scale to 2 through the confirmation dialog.
  await page.evaluate(() => { window.droverE2eMarker = 'not reloaded'; });
  const eventsBefore = Number(await page.getByTestId('live-status').getAttribute('data-events'));
  const row = page.locator(`tr[data-app-id="${cfg.app}"]`);
  await row.getByTestId('scale-button').click();
  await page.waitForSelector('dialog[open]');
  const title = await page.locator('#dialog-title').textContent();
  if (!title.includes(cfg.app)) throw new Error(`the scale dialog is titled "${title}"`);
  await page.getByLabel('Instances').fill('2');
  await confirmDialog('scale');
  log('scaled to 2 from the UI');

  // 3. The page shows 2 running, from the event stream, without reloading.
  await until(`${cfg.app} with 2 running tasks`, (a) => window.e2eCell(a) === '2', [cfg.app, 'app-running'], 120_000,
    (a) => window.e2eCell(a));
  await until(`${cfg.app} to be Running`, (a) => window.e2eCell(a) === 'Running', [cfg.app, 'app-status'], 60_000,
    (a) => window.e2eCell(a));
  const marker = await page.evaluate(() => window.droverE2eMarker);
  if (marker !== 'not reloaded') throw new Error('the page was reloaded');
  const eventsAfter = Number(await page.getByTestId('live-status').getAttribute('data-events'));
  if (!(eventsAfter > eventsBefore)) throw new Error(`no event arrived (${eventsBefore} before, ${eventsAfter} after)`);
  log(`2 running without a reload; ${eventsAfter - eventsBefore} events arrived`);
  await until(`${cfg.healthyApp} with 2 healthy tasks`, (a) => window.e2eCell(a) === '2', [cfg.healthyApp, 'app-healthy'],
    30_000, (a) => window.e2eCell(a));
  await until(`${cfg.waitingApp} to be Waiting`, (a) => window.e2eCell(a) === 'Waiting', [cfg.waitingApp, 'app-status'],
    30_000, (a) => window.e2eCell(a));
  shots.push(await screenshot('ui-apps.png'));

  // 4. The app's page: its 2 tasks, each with a host and a port.
  await row.getByTestId('app-link').click();
  await until('2 task rows', () => document.querySelectorAll('[data-testid=task-row]').length === 2, null, 30_000,
    () => document.querySelectorAll('[data-testid=task-row]').length);
  const tasks = await page.locator('[data-testid=task-row]').allTextContents();
  if (!tasks.every((t) => t.includes('running'))) throw new Error(`tasks not all running: ${tasks}`);
  shots.push(await screenshot('ui-app.png'));

  // 5. An API error is shown: restarting an app whose deployment cannot finish is refused (409).
  await page.goto(`${cfg.url}/ui/#/apps${cfg.waitingApp}`);
  await until('the waiting app\'s reject reasons', () => /InsufficientMemory/.test(
    document.querySelector('[data-testid=app-waiting]')?.textContent || ''), null, 60_000,
  () => document.querySelector('main')?.textContent.slice(0, 300));
  const progress = await page.getByTestId('deployment-progress').textContent();
  if (!/Step 1 of 1/.test(progress) || !/Running: 0 of 1/.test(progress)) throw new Error(`deployment progress: ${progress}`);
  await page.getByTestId('restart-button').first().click();
  await page.getByTestId('dialog-confirm').click();
  await until('the API\'s error in the dialog', () => /locked/i.test(
    document.querySelector('[data-testid=dialog-error]')?.textContent || ''), null, 30_000,
  () => document.querySelector('[data-testid=dialog-error]')?.textContent);
  shots.push(await screenshot('ui-error.png'));
  await page.getByTestId('dialog-cancel').click();
  log('the API\'s 409 message is shown in the dialog');

  // 6. The launch queue says why the waiting app cannot launch.
  await page.getByTestId('nav-queue').click();
  await until('the queue row with InsufficientMemory', (id) => /InsufficientMemory/.test(
    document.querySelector(`[data-testid=queue-row][data-app-id="${id}"]`)?.textContent || ''), cfg.waitingApp, 30_000,
  () => document.querySelector('main')?.textContent.slice(0, 300));
  shots.push(await screenshot('ui-queue.png'));

  // 7. Jobs: both listed, the graph has both nodes and the dependency; run one now.
  await page.getByTestId('nav-jobs').click();
  await until('2 job rows and the graph', () => document.querySelectorAll('[data-testid=job-row]').length === 2
    && document.querySelectorAll('[data-testid=graph-node]').length === 2
    && document.querySelectorAll('[data-testid=graph-edge]').length === 1, null, 30_000,
  () => document.querySelector('main')?.textContent.slice(0, 300));
  await page.locator(`tr[data-job="${cfg.job}"]`).getByTestId('run-job-button').click();
  await confirmDialog('run the job');
  await page.locator(`tr[data-job="${cfg.job}"]`).getByTestId('job-link').click();
  await until('a succeeded run in the history', () => [...document.querySelectorAll('[data-testid=run-status]')]
    .some((c) => c.textContent.trim() === 'succeeded'), null, 120_000,
  () => [...document.querySelectorAll('[data-testid=run-row]')].map((r) => r.textContent));
  shots.push(await screenshot('ui-job-runs.png'));
  await page.getByTestId('nav-jobs').click();
  await until('the job\'s last result success', (job) => document
    .querySelector(`tr[data-job="${job}"] [data-testid=job-result]`)?.textContent.trim() === 'success', cfg.job, 30_000,
  (job) => document.querySelector(`tr[data-job="${job}"]`)?.textContent);
  shots.push(await screenshot('ui-jobs.png'));

  // 8. The apps page once more, freshly loaded, in a short window (for the README).
  await page.setViewportSize({ width: 1280, height: 360 });
  await page.goto(`${cfg.url}/ui/#/apps`);
  await page.reload();
  await until('the apps table', () => document.querySelectorAll('[data-testid=app-row]').length === 3, null, 30_000,
    () => document.querySelectorAll('[data-testid=app-row]').length);
  shots.push(await screenshot('ui-apps-overview.png'));

  if (pageErrors.length) throw new Error(`the page threw:\n${pageErrors.join('\n')}`);
  log('all checks passed');
  console.log(`UI-E2E-RESULT ${JSON.stringify({ ok: true, seconds: (Date.now() - started) / 1000, screenshots: shots })}`);
  clearTimeout(overall);
  await browser.close();
} catch (e) {
  console.error(`ui.mjs: FAILED: ${e.message}`);
  console.error(`page: ${page.url()}`);
  const dom = await page.evaluate(() => [
    `live: ${document.getElementById('live')?.outerHTML}`,
    `errors: ${document.getElementById('errors')?.textContent}`,
    `dialog: ${document.getElementById('dialog')?.open ? document.getElementById('dialog').textContent : '(closed)'}`,
    `main: ${document.querySelector('main')?.outerHTML}`,
  ].join('\n').slice(0, 6000)).catch((x) => `(no DOM: ${x})`);
  console.error(`--- DOM ---\n${dom}`);
  console.error(`--- console (${consoleLines.length}) ---\n${consoleLines.join('\n')}`);
  console.error(`--- page errors (${pageErrors.length}) ---\n${pageErrors.join('\n')}`);
  console.error(`--- failed requests (${badResponses.length}) ---\n${badResponses.join('\n')}`);
  await page.screenshot({ path: join(cfg.out, 'failure.png'), fullPage: true })
    .then(() => console.error(`screenshot: ${join(cfg.out, 'failure.png')}`)).catch(() => {});
  clearTimeout(overall);
  await browser.close().catch(() => {});
  process.exit(1);
}
