// tls.test.mjs - the dashboard over HTTPS and its live stream over WSS, in Debian's headless
// Chromium (playwright-core) against the real ei-relay binary with tls_cert_file/tls_key_file.
// The certificates are made at test time with the README's openssl command (certs.py). Chromium
// trusts exactly the relay's key (--ignore-certificate-errors-spki-list, no blanket ignore): a
// second relay with another self-signed certificate is refused by the same browser. Signed in,
// the page opens its WebSocket with wss:// and shows an inference posted over HTTPS.
//
// Environment: EI_RELAY_BIN, EI_TEST_SOURCE_DIR, EI_ARTIFACTS_DIR, EI_CHROMIUM (/usr/bin/chromium).
// Exit 77 (skipped) only when Chromium, node_modules or openssl is missing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CHROMIUM_ARGS, Relay, TOKENS } from './relay.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.EI_CHROMIUM || '/usr/bin/chromium';
const PW = path.join(here, 'node_modules', 'playwright-core', 'index.mjs');
const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
})();
for (const [what, ok] of [
  [`Chromium at ${CHROMIUM}`, fs.existsSync(CHROMIUM)],
  [`playwright-core at ${PW} (run npm ci in tests/browser)`, fs.existsSync(PW)],
  ['openssl (scripts/deps.sh test)', haveOpenssl],
]) {
  if (!ok) {
    console.log(`SKIP: ${what} not found`);
    process.exit(77);
  }
}
const { chromium } = await import(PW);

const ARTIFACTS = process.env.EI_ARTIFACTS_DIR || path.join(process.cwd(), 'artifacts', 'browser');
fs.mkdirSync(ARTIFACTS, { recursive: true });
const WAIT_MS = 10000;

let pki;
let certs;
let relay;
let browser;
let page;
const sockets = []; // the URLs of every WebSocket the page opened
const pageErrors = [];

before(async () => {
  pki = fs.mkdtempSync(path.join(os.tmpdir(), 'ei-browser-tls-'));
  const out = execFileSync(process.env.EI_PYTHON || 'python3', [path.join(here, 'certs.py'), pki, 'relay', 'other'], {
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  certs = JSON.parse(out.toString());
  relay = new Relay({ tls_cert_file: certs.relay.cert, tls_key_file: certs.relay.key });
  await relay.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      ...CHROMIUM_ARGS,
      // trusts this one key, whatever signed it; every other certificate error still stops a page
      `--ignore-certificate-errors-spki-list=${certs.relay.spki}`,
    ],
  });
  page = await browser.newPage();
  page.on('websocket', (ws) => sockets.push(ws.url()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  try {
    if (browser) await browser.close();
    if (relay) {
      await relay.stop(); // throws on a non-zero exit or a sanitizer report
      relay.cleanup();
    }
  } finally {
    if (pki) fs.rmSync(pki, { recursive: true, force: true });
  }
});

test('the dashboard loads over https and shows a live inference received over wss', async () => {
  assert.match(relay.base, /^https:\/\//);
  const resp = await page.goto(`${relay.base}/`);
  assert.equal(resp.status(), 200);
  await page.waitForSelector('#login:not([hidden])', { timeout: WAIT_MS });
  await page.fill('#token', TOKENS.read);
  await page.click('#login-submit');
  await page.waitForSelector('#live-state[data-state="live"]', { timeout: WAIT_MS });
  const wsUrl = `wss://127.0.0.1:${relay.cfg.ws_port}/api/v1/live`;
  assert.deepEqual(sockets, [wsUrl], 'the page opened exactly one WebSocket, over wss://');

  const stored = await relay.ingest({
    result: { classification: { 'over-tls': 0.93, plain: 0.07 } },
    timing: { dsp: 1, classification: 2, anomaly: 0 },
  });
  await page.waitForSelector(`#live-list > li[data-id="${stored.id}"]`, { timeout: WAIT_MS });
  const file = path.join(ARTIFACTS, 'tls-live.png');
  await page.screenshot({ path: file, animations: 'disabled' });
  console.log(`# screenshot: ${file}`);
  assert.deepEqual(pageErrors, []);
});

test('the same browser refuses a certificate with another key', async () => {
  const other = new Relay({ tls_cert_file: certs.other.cert, tls_key_file: certs.other.key });
  try {
    await other.start();
    const p = await browser.newPage();
    try {
      await assert.rejects(p.goto(`${other.base}/`), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await p.close();
    }
  } finally {
    await other.stop();
    other.cleanup();
  }
});
