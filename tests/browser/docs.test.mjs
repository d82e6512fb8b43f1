// Real-browser test of gatehouse's /docs (Swagger UI) and /redoc (ReDoc).
//
//   BASE_URL=http://127.0.0.1:8000 node --test tests/browser/
//
// Usually started through tests/browser/run.sh, which builds nothing, starts
// build/gatehouse on a free port and points BASE_URL at it.
//
// Environment:
//   BASE_URL       server under test (required), e.g. http://127.0.0.1:8000
//   ARTIFACT_DIR   where screenshots go (default: <repo>/build/test-artifacts)
//   CHROMIUM       browser executable (default: /usr/bin/chromium)
//
// Uses playwright-core with Debian's Chromium: no browser download ever.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const ARTIFACT_DIR = process.env.ARTIFACT_DIR
  ? path.resolve(process.env.ARTIFACT_DIR)
  : path.join(REPO, 'build', 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const TEST_TIMEOUT = 30_000; // per test
const STEP_TIMEOUT = 10_000; // per wait/click

const SCHEME = 'OAuth2PasswordBearer';

let context;
let userDataDir;

before(async () => {
  assert.ok(BASE_URL, 'BASE_URL must be set, e.g. BASE_URL=http://127.0.0.1:8000');
  mkdirSync(ARTIFACT_DIR, { recursive: true });
  userDataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: TEST_TIMEOUT,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
});

after(async () => {
  await context?.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

const isFavicon = (url) => /\/favicon[^/]*$/i.test(new URL(url).pathname);

// Off-site requests tolerated. ReDoc 2.x's standalone bundle hard-codes the
// "API docs by Redocly" menu logo at this URL (no option turns it off); the
// <img> hides itself when the load fails, so offline it costs nothing.
const KNOWN_EXTERNAL = new Set(['https://cdn.redoc.ly/redoc/logo-mini.svg']);
const isKnownExternal = (url) => KNOWN_EXTERNAL.has(url);

// A fresh page that records console errors, uncaught exceptions, failed
// requests, requests leaving BASE_URL (everything must be served locally,
// no CDN) and HTTP errors on the page's own static resources.
async function openPage() {
  const page = await context.newPage();
  const problems = [];
  const origin = new URL(BASE_URL).origin;
  page.on('request', (req) => {
    const url = req.url();
    if (/^(data|blob|about):/.test(url) || isKnownExternal(url)) return;
    if (new URL(url).origin !== origin) problems.push(`off-site request: ${req.method()} ${url}`);
  });
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location()?.url || '';
    if (url && (isFavicon(url) || isKnownExternal(url))) return;
    problems.push(`console error: ${msg.text()}${url ? ` (${url})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught exception: ${err.message}`));
  page.on('requestfailed', (req) => {
    if (isFavicon(req.url()) || isKnownExternal(req.url())) return;
    problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  page.on('response', (res) => {
    const type = res.request().resourceType();
    if (res.status() >= 400 && ['document', 'script', 'stylesheet', 'image', 'font'].includes(type)
        && !isFavicon(res.url())) {
      problems.push(`HTTP ${res.status()} for ${type} ${res.url()}`);
    }
  });
  return { page, problems };
}

async function failureShot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACT_DIR, name), fullPage: true }).catch(() => {});
}

// The operation block for METHOD PATH (matched on Swagger UI's data-path).
function operation(page, method, p) {
  return page.locator(`.opblock.opblock-${method.toLowerCase()}`, {
    has: page.locator(`.opblock-summary-path[data-path="${p}"]`),
  });
}

// Expand an operation, "Try it out", "Execute"; returns { code, body }.
async function tryItOut(page, method, p) {
  const op = operation(page, method, p);
  await op.scrollIntoViewIfNeeded();
  if (!(await op.evaluate((el) => el.classList.contains('is-open')))) {
    await op.locator('.opblock-summary').first().click();
  }
  await op.locator('button.try-out__btn').click();
  await op.locator('button.execute').click();
  const row = op.locator('.live-responses-table tbody tr.response').first();
  await row.waitFor({ state: 'visible' });
  const code = (await row.locator('td.response-col_status').innerText()).trim();
  const body = await row.locator('.response-col_description .highlight-code, .response-col_description pre')
    .first().innerText();
  return { code, body };
}

test('/docs: Swagger UI logs in through the OAuth2 password flow and calls the API',
  { timeout: TEST_TIMEOUT }, async () => {
    const { page, problems } = await openPage();
    try {
      const resp = await page.goto(`${BASE_URL}/docs`, { waitUntil: 'load' });
      assert.equal(resp.status(), 200, '/docs status');

      // Operations rendered from /openapi.json.
      await operation(page, 'POST', '/token').waitFor({ state: 'visible' });
      for (const [m, p] of [['GET', '/users/me/'], ['GET', '/users/me/items/'],
        ['GET', '/status/'], ['GET', '/items/']]) {
        assert.equal(await operation(page, m, p).count(), 1, `operation ${m} ${p} rendered`);
      }

      // Authorize dialog: OAuth2 password flow with scopes me + items.
      await page.locator('.scheme-container button.authorize').click();
      const dialog = page.locator('.dialog-ux .modal-ux');
      await dialog.waitFor({ state: 'visible' });
      const auth = dialog.locator('.auth-container', { hasText: SCHEME });
      await auth.locator('#oauth_username').fill('johndoe');
      await auth.locator('#oauth_password').fill('secret');
      for (const scope of ['me', 'items']) {
        const id = `${scope}-password-checkbox-${SCHEME}`;
        const box = auth.locator(`input[id="${id}"]`);
        if (!(await box.isChecked())) await auth.locator(`label[for="${id}"]`).click();
        assert.ok(await box.isChecked(), `scope ${scope} ticked`);
      }
      const [tokenResp] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/token'
          && r.request().method() === 'POST'),
        auth.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click(),
      ]);
      assert.equal(tokenResp.status(), 200, 'POST /token status from the Authorize dialog');
      const sent = new URLSearchParams(tokenResp.request().postData() || '');
      assert.equal(sent.get('grant_type'), 'password');
      assert.equal(sent.get('username'), 'johndoe');
      assert.deepEqual((sent.get('scope') || '').split(' ').sort(), ['items', 'me']);

      // Authorized: the dialog offers Logout instead of Authorize.
      await auth.getByRole('button', { name: 'Remove authorization' }).waitFor({ state: 'visible' });
      assert.match(await auth.innerText(), /Authorized/);
      assert.equal(await auth.locator('#oauth_password').count(), 0, 'password field gone');
      await dialog.getByRole('button', { name: 'Close', exact: true }).click();
      await dialog.waitFor({ state: 'hidden' });
      await page.locator('.scheme-container button.authorize.locked').waitFor({ state: 'visible' });

      const me = await tryItOut(page, 'GET', '/users/me/');
      assert.equal(me.code, '200', `GET /users/me/ response code; body: ${me.body}`);
      assert.match(me.body, /"username": "johndoe"/);
      assert.match(me.body, /"email": "johndoe@example.com"/);
      await page.screenshot({ path: path.join(ARTIFACT_DIR, 'docs-authorized.png'), fullPage: true });

      const items = await tryItOut(page, 'GET', '/users/me/items/');
      assert.equal(items.code, '200', `GET /users/me/items/ response code; body: ${items.body}`);
      assert.match(items.body, /"owner": "johndoe"/);
      assert.match(items.body, /"item_id": "Foo"/);

      assert.deepEqual(problems, [], 'no console errors or failed requests on /docs');
    } catch (err) {
      await failureShot(page, 'docs-failure.png');
      throw err;
    } finally {
      await page.close();
    }
  });

test('/docs/oauth2-redirect: Swagger UI\'s redirect page and its script are served',
  { timeout: TEST_TIMEOUT }, async () => {
    // Not reached by the password flow; only check the page and what it loads.
    const res = await context.request.get(`${BASE_URL}/docs/oauth2-redirect`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'] || '', /^text\/html/);
    const html = await res.text();
    const srcs = [...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]);
    if (srcs.length === 0) {
      assert.match(html, /swaggerUIRedirectOauth2/, 'inline redirect script');
    }
    for (const src of srcs) {
      const url = new URL(src, `${BASE_URL}/docs/oauth2-redirect`).href;
      const js = await context.request.get(url);
      assert.equal(js.status(), 200, `script ${url} referenced by the redirect page`);
      assert.match(await js.text(), /swaggerUIRedirectOauth2/, `${url} is oauth2-redirect.js`);
    }
  });

test('/redoc: ReDoc renders the API', { timeout: TEST_TIMEOUT }, async () => {
  const { page, problems } = await openPage();
  try {
    const resp = await page.goto(`${BASE_URL}/redoc`, { waitUntil: 'load' });
    assert.equal(resp.status(), 200, '/redoc status');
    const spec = await (await context.request.get(`${BASE_URL}/openapi.json`)).json();
    const title = spec.info.title;
    await page.locator('.api-info h1', { hasText: title }).waitFor({ state: 'visible' });
    const menuItem = page.locator('[role="menuitem"], .menu-content li', { hasText: 'Login For Access Token' });
    await menuItem.first().waitFor({ state: 'visible' });
    await page.locator('h2', { hasText: 'Login For Access Token' }).first().waitFor({ state: 'visible' });
    assert.match(await page.locator('.api-info h1').innerText(), new RegExp(title));
    await page.screenshot({ path: path.join(ARTIFACT_DIR, 'redoc.png') });
    assert.deepEqual(problems, [], 'no console errors or failed requests on /redoc');
  } catch (err) {
    await failureShot(page, 'redoc-failure.png');
    throw err;
  } finally {
    await page.close();
  }
});
