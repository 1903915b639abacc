// The web UI against an API that requires authentication, for
// integration/e2e/tests/ui_auth.rs: the page asks for a token (the API
// answered 401), a wrong one is refused, the right one (kept in
// sessionStorage) shows the apps and connects the event stream (which sends
// it too), and signing out forgets it.
//
//   node token.mjs '{"url": "http://127.0.0.1:PORT", "token": "NAME:SECRET", "app": "/id"}'
//
// Exits 1 with what failed. $DROVER_CHROMIUM overrides /usr/bin/chromium.

import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2] || '{}');
for (const key of ['url', 'token', 'app']) {
  if (!cfg[key]) {
    console.error(`token.mjs: missing "${key}" in the JSON argument`);
    process.exit(2);
  }
}
const browser = await chromium.launch({
  executablePath: process.env.DROVER_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  chromiumSandbox: false,
  timeout: 60_000,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const overall = setTimeout(() => {
  console.error('token.mjs: gave up after 120s');
  browser.close().finally(() => process.exit(1));
}, 120_000);

const page = await (await browser.newContext()).newPage();
page.setDefaultTimeout(30_000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e.stack || e)));
const consoleLines = [];
page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));

async function until(what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: 30_000, polling: 250 });
  } catch {
    throw new Error(`timed out waiting for ${what}`);
  }
}

let status = 0;
try {
  await page.goto(`${cfg.url}/ui/`, { waitUntil: 'domcontentloaded' });
  await until('the token form', () => !document.getElementById('token-form').hidden);
  if (await page.getByTestId('sign-out').isVisible()) throw new Error('sign out is shown without a token');
  await until('the 401 message', () => document.getElementById('errors').textContent.includes('needs an API token'));
  if (await page.locator('tr[data-testid="app-row"]').count()) throw new Error('apps shown without a token');

  // A wrong token: still refused.
  await page.getByTestId('token-input').fill('nobody:wrong');
  await page.getByTestId('token-submit').click();
  await until('the wrong token to be refused', () =>
    !document.getElementById('token-form').hidden
    && document.getElementById('errors').textContent.includes('refused this token'));

  // The right one: the apps, and the live event stream.
  await page.getByTestId('token-input').fill(cfg.token);
  await page.getByTestId('token-submit').click();
  await until(`${cfg.app} listed`, (id) => !!document.querySelector(`tr[data-app-id="${id}"]`), cfg.app);
  await until('the event stream to connect', () => document.getElementById('live').dataset.state === 'live');
  const stored = await page.evaluate(() => sessionStorage.getItem('drover.token'));
  if (stored !== cfg.token) throw new Error('the token is not kept in sessionStorage');
  if (await page.evaluate(() => localStorage.length) !== 0) throw new Error('something went to localStorage');

  if (await page.getByTestId('token-form').isVisible()) throw new Error('the token form is still shown');
  // Signing out forgets it.
  await page.getByTestId('sign-out').click();
  const after = await page.evaluate(() => sessionStorage.getItem('drover.token'));
  if (after !== null) throw new Error('signing out kept the token');
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('\n')}`);
  console.log('token.mjs: ok');
} catch (e) {
  console.error(`token.mjs: ${e.message}`);
  console.error(`page errors: ${pageErrors.join('\n')}`);
  console.error(`console: ${consoleLines.join('\n')}`);
  console.error((await page.content().catch(() => '')).slice(0, 3000));
  status = 1;
} finally {
  clearTimeout(overall);
  await browser.close();
}
process.exit(status);
