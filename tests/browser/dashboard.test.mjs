// dashboard.test.mjs - the ei-relay dashboard in a real browser: Debian's Chromium, headless,
// driven by playwright-core, against the real ei-relay binary (relay.mjs).
//
// Steps, in order (one relay, one browser): a wrong token is refused; sign in; an inference
// posted over REST (JPEG + bounding box) appears live within a second with its box drawn on the
// object; one from a runner (runner.py, a fake edge-impulse-linux-runner) too, at the runner's
// model scale; history filters and cursor pages match the REST answers; a detail shows the
// stored JSON, and an admin deletes it; status shows the forwarder off, storage, the runner
// source and its model; with forwarding on (mosquitto) it follows the broker going away and
// coming back; charts
// follow /api/v1/stats; the relay restarts, the page reconnects and shows what was posted
// while it was away, without a gap; a phone-sized screen has no horizontal scroll; controls
// have accessible names; the page loads nothing from outside the relay.
//
// Screenshots go to EI_ARTIFACTS_DIR (default <cwd>/artifacts/browser); their paths are printed.
// Exit 77 (skipped) only when Chromium or node_modules are missing.
//
// Environment: EI_RELAY_BIN, EI_TEST_SOURCE_DIR, EI_ARTIFACTS_DIR, EI_CHROMIUM (/usr/bin/chromium).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CHROMIUM_ARGS, Relay, TOKENS } from './relay.mjs';
import { PyHelper } from './pyhelper.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.EI_CHROMIUM || '/usr/bin/chromium';
const PW = path.join(here, 'node_modules', 'playwright-core', 'index.mjs');
for (const [what, p] of [
  ['Chromium', CHROMIUM],
  ['playwright-core (run npm ci in tests/browser)', PW],
]) {
  if (!fs.existsSync(p)) {
    console.log(`SKIP: ${what} not found at ${p}`);
    process.exit(77);
  }
}
const { chromium } = await import(PW);

const ARTIFACTS = process.env.EI_ARTIFACTS_DIR || path.join(process.cwd(), 'artifacts', 'browser');
fs.mkdirSync(ARTIFACTS, { recursive: true });

const LIVE_DEADLINE_MS = 1000; // an inference must be on screen this soon after its POST
const WAIT_MS = 10000; // for anything else the page must reach

// Object-detection model input of the posted inferences, and their image (twice the size):
// box coordinates are model pixels, so a box at x=40 is drawn at 80 image pixels.
const MODEL = { width: 160, height: 120 };
const IMAGE = { width: 320, height: 240 };
const LABELS = ['person', 'car', 'dog'];

let relay;
let runner;
let browser;
let context;
let page;
let scratch; // a blank page that paints the test JPEGs
const pageErrors = [];
const foreignRequests = [];
const shots = [];

// ---- helpers ------------------------------------------------------------------------------

function watch(p) {
  p.on('pageerror', (e) => pageErrors.push(`${e.message}`));
  p.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|WebSocket connection/.test(m.text())) {
      pageErrors.push(`console: ${m.text()}`);
    }
  });
  p.on('request', (r) => {
    const u = new URL(r.url());
    if (!['blob:', 'data:'].includes(u.protocol) && u.hostname !== '127.0.0.1') foreignRequests.push(r.url());
  });
}

async function shot(p, name, opts = {}) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await p.screenshot({ path: file, animations: 'disabled', ...opts });
  shots.push(file);
}

// A JPEG scene painted by the browser: a backdrop and one coloured object per box (given in
// model pixels), so a correctly drawn box frames its object.
async function paintJpeg(boxes, seed = 0, image = IMAGE, model = MODEL) {
  const dataUrl = await scratch.evaluate(
    ({ boxes, seed, image, model }) => {
      const c = document.createElement('canvas');
      c.width = image.width;
      c.height = image.height;
      const g = c.getContext('2d');
      const grad = g.createLinearGradient(0, 0, image.width, image.height);
      grad.addColorStop(0, `hsl(${(seed * 47) % 360} 35% 30%)`);
      grad.addColorStop(1, `hsl(${(seed * 47 + 120) % 360} 35% 55%)`);
      g.fillStyle = grad;
      g.fillRect(0, 0, image.width, image.height);
      const sx = image.width / model.width;
      const sy = image.height / model.height;
      for (const b of boxes) {
        g.fillStyle = b.color || '#f0c419';
        g.fillRect(b.x * sx, b.y * sy, b.width * sx, b.height * sy);
      }
      return c.toDataURL('image/jpeg', 0.85);
    },
    { boxes, seed, image, model },
  );
  return Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
}

function detection(label, value, box, extra = {}) {
  return {
    result: { bounding_boxes: [{ label, value, ...box }] },
    model: MODEL,
    timing: { dsp: 2, classification: 11, anomaly: 0 },
    ...extra,
  };
}

// Checks that a drawn box lies on the picture where its model coordinates say.
async function boxGeometry(p, scope, label) {
  return p.evaluate(
    ({ scope, label }) => {
      const root = document.querySelector(scope);
      if (!root) return { error: `no ${scope}` };
      const img = root.querySelector('.frame img');
      const box = root.querySelector(`.box[data-label="${label}"]`);
      if (!img || !box) return { error: `img ${Boolean(img)} box ${Boolean(box)}` };
      const r = (e) => {
        const b = e.getBoundingClientRect();
        return { x: b.left, y: b.top, w: b.width, h: b.height };
      };
      return {
        img: r(img),
        box: r(box),
        natural: { w: img.naturalWidth, h: img.naturalHeight },
        loaded: img.complete && img.naturalWidth > 0,
        text: box.textContent,
        border: parseFloat(getComputedStyle(box).borderLeftWidth),
      };
    },
    { scope, label },
  );
}

function assertBoxOnImage(g, box, what, model = MODEL) {
  assert.ok(!g.error, `${what}: ${g.error}`);
  assert.ok(g.loaded, `${what}: image not loaded`);
  assert.ok(g.img.w > 20 && g.img.h > 20, `${what}: image drawn ${g.img.w}x${g.img.h}`);
  // The picture keeps its aspect (no stretching): displayed ratio = the image's ratio.
  const shown = g.img.w / g.img.h;
  const real = g.natural.w / g.natural.h;
  assert.ok(Math.abs(shown - real) / real < 0.02, `${what}: aspect ${shown.toFixed(3)} vs ${real.toFixed(3)}`);
  const sx = g.img.w / model.width;
  const sy = g.img.h / model.height;
  const want = { x: g.img.x + box.x * sx, y: g.img.y + box.y * sy, w: box.width * sx, h: box.height * sy };
  const tol = 1.5;
  for (const k of ['x', 'y', 'w', 'h']) {
    assert.ok(
      Math.abs(g.box[k] - want[k]) <= tol,
      `${what}: box ${k} is ${g.box[k].toFixed(1)}, expected ${want[k].toFixed(1)} (image at ${JSON.stringify(g.img)})`,
    );
  }
}

async function liveSeqs(p) {
  return p.$$eval('#live-list > li[data-id]', (lis) => lis.map((li) => ({ id: li.dataset.id, seq: Number(li.dataset.seq) })));
}

async function noHorizontalScroll(p, what) {
  const m = await p.evaluate(() => ({
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    vw: window.innerWidth,
  }));
  assert.ok(m.doc <= m.vw && m.body <= m.vw, `${what}: content ${m.doc}/${m.body} px wide in a ${m.vw} px viewport`);
}

async function showTab(p, name) {
  await p.click(`#tab-${name}`);
  await p.waitForSelector(`#view-${name}:not([hidden])`, { timeout: WAIT_MS });
}

async function signIn(p, token) {
  await p.waitForSelector('#login:not([hidden])', { timeout: WAIT_MS });
  await p.fill('#token', token);
  await p.click('#login-submit');
}

// ---- setup --------------------------------------------------------------------------------

before(async () => {
  const t0 = Date.now();
  runner = new PyHelper('runner.py');
  const { port } = await runner.start();
  relay = new Relay({ sources: [{ name: 'camera', kind: 'runner-ws', url: `ws://127.0.0.1:${port}/` }] });
  await relay.start();
  await runner.command({ cmd: 'ready' }); // the relay's runner-ws source connected, asked for previews
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ei-chromium-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, `--disk-cache-dir=${profile}`],
  });
  scratch = await browser.newPage();

  // The cache before the page opens: 30 inferences over the last 3 hours, every other with a
  // picture, labels in turn (so charts and filters have something to show).
  const now = Date.now();
  const posts = [];
  for (let i = 0; i < 30; i++) {
    const label = LABELS[i % LABELS.length];
    const box = { x: 20 + (i % 5) * 18, y: 15 + (i % 3) * 14, width: 36, height: 44 };
    const doc = detection(label, 0.55 + ((i * 7) % 45) / 100, box, { ts: now - (30 - i) * 6 * 60000 });
    const jpeg = i % 2 === 0 ? await paintJpeg([{ ...box, color: ['#f0c419', '#3cb4e6', '#e6573c'][i % 3] }], i) : null;
    posts.push(relay.ingest(doc, { jpeg, source: i % 4 === 0 ? 'mcu' : 'gate' }));
  }
  await Promise.all(posts);
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  watch(page);
  console.log(`# setup: relay and Chromium ${browser.version()} ready, 30 inferences seeded in ${Date.now() - t0} ms`);
});

after(async () => {
  try {
    if (browser) await browser.close();
    if (runner) await runner.stop();
    if (relay) {
      await relay.stop(); // throws on a non-zero exit or a sanitizer report
      relay.cleanup();
    }
  } finally {
    for (const f of shots) console.log(`# screenshot: ${f}`);
  }
});

// ---- the steps ----------------------------------------------------------------------------

test('a wrong token is refused with a clear message', async () => {
  await page.goto(`${relay.base}/`);
  await signIn(page, 'not-a-valid-token');
  const err = await page.waitForSelector('#login-error:not([hidden])', { timeout: WAIT_MS });
  assert.match(await err.textContent(), /not accepted \(401\)/);
  assert.equal(await page.isHidden('#app'), true, 'the dashboard stays hidden');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('ei-relay.token')), null);
  await shot(page, 'login-refused');

  // An ingest-only token may not read: refused as well, with its own reason.
  await page.fill('#token', TOKENS.ingest);
  await page.click('#login-submit');
  await page.waitForFunction(() => /ingest-only/.test(document.querySelector('#login-error').textContent), null, {
    timeout: WAIT_MS,
  });
  assert.equal(await page.isHidden('#app'), true);
});

test('sign in with an admin token: the live stream connects', async () => {
  await page.fill('#token', TOKENS.admin);
  await page.click('#login-submit');
  await page.waitForSelector('#app:not([hidden])', { timeout: WAIT_MS });
  await page.waitForSelector('#live-state[data-state="live"]', { timeout: WAIT_MS });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('ei-relay.token')), TOKENS.admin);
  assert.equal((await page.textContent('#pill-live .pill-text')).trim(), 'Live: live');
  // The newest from the cache are shown before anything arrives live, newest first.
  await page.waitForFunction(() => document.querySelectorAll('#live-list > li[data-id]').length === 12, null, {
    timeout: WAIT_MS,
  });
  const newest = (await relay.getJson('/api/v1/inferences?limit=12')).items.map((it) => it.id);
  assert.deepEqual((await liveSeqs(page)).map((c) => c.id), newest);
  assert.equal(await page.textContent('#device'), (await relay.getJson('/api/v1/health')).device);
});

let liveId;
const LIVE_BOX = { x: 40, y: 30, width: 50, height: 60 };

test('an inference posted over REST appears live within a second, its box on the object', async () => {
  const jpeg = await paintJpeg([{ ...LIVE_BOX, color: '#ff3b30' }], 99);
  const t0 = Date.now();
  const stored = await relay.ingest(detection('forklift', 0.91, LIVE_BOX), { jpeg, source: 'gate' });
  liveId = stored.id;
  const card = `#live-list > li[data-id="${liveId}"]`;
  await page.waitForSelector(`${card} .media.loaded .box[data-label="forklift"]`, { timeout: 5000 });
  const ms = Date.now() - t0;
  console.log(`# live: POST to card with its image and box on screen in ${ms} ms`);
  assert.ok(ms < LIVE_DEADLINE_MS, `the inference took ${ms} ms to appear (limit ${LIVE_DEADLINE_MS} ms)`);

  // The card is first (newest first) and its box sits on the object in the thumbnail.
  assert.equal((await liveSeqs(page))[0].id, liveId);
  const g = await boxGeometry(page, card, 'forklift');
  assertBoxOnImage(g, LIVE_BOX, 'live card');
  assert.equal(g.text, 'forklift 91 %');
  assert.equal(await page.textContent(`${card} .label`), 'forklift');
  assert.equal(await page.textContent(`${card} .source`), 'gate');

  // The large view shows it too, from the full-size image.
  await page.waitForSelector(`#featured .featured-media[data-id="${liveId}"] .media.loaded`, { timeout: WAIT_MS });
  const fg = await boxGeometry(page, '#featured .featured-media', 'forklift');
  assertBoxOnImage(fg, LIVE_BOX, 'featured');
  assert.deepEqual(fg.natural, { w: IMAGE.width, h: IMAGE.height });
  assert.ok(fg.img.w > g.img.w * 1.5, 'the featured picture is the large one');
  await shot(page, 'live');
});

test("a runner's inference appears live, boxes at the runner's model scale", async () => {
  // The runner's model is 96x96; its preview frames here are 192x192.
  const model = { width: 96, height: 96 };
  const ball = { label: 'ball', value: 0.87, x: 24, y: 16, width: 32, height: 40 };
  const jpeg = await paintJpeg([{ ...ball, color: '#ff8c00' }], 7, { width: 192, height: 192 }, model);
  const t0 = Date.now();
  const sent = await runner.command({ cmd: 'classify', result: { bounding_boxes: [ball] }, jpeg_b64: jpeg.toString('base64') });
  assert.deepEqual(sent, { previews: 1, classifications: 1 });
  const card = '#live-list > li[data-id]:first-child';
  await page.waitForSelector(`${card}[data-id] .media.loaded .box[data-label="ball"]`, { timeout: 5000 });
  console.log(`# runner: classification to card on screen in ${Date.now() - t0} ms`);
  assert.equal(await page.textContent(`${card} .source`), 'camera');
  const id = await page.$eval(card, (li) => li.dataset.id);
  const stored = await relay.getJson(`/api/v1/inferences/${id}`);
  assert.deepEqual(stored.model, model);
  assert.deepEqual([stored.image.width, stored.image.height], [192, 192]);
  assertBoxOnImage(await boxGeometry(page, card, 'ball'), ball, 'runner card', model);
});

test('history: label and score filters and cursor pages match the REST answers', async () => {
  await showTab(page, 'history');
  const all = await relay.listAll();
  await page.waitForFunction(() => document.querySelectorAll('#history-list > li[data-id]').length === 24, null, {
    timeout: WAIT_MS,
  });
  const ids = () => page.$$eval('#history-list > li[data-id]', (lis) => lis.map((li) => li.dataset.id));
  assert.deepEqual(await ids(), all.slice(0, 24).map((it) => it.id));
  // The next page through the cursor.
  await page.click('#history-more');
  await page.waitForFunction(
    (n) => document.querySelectorAll('#history-list > li[data-id]').length === n,
    Math.min(48, all.length),
    { timeout: WAIT_MS },
  );
  assert.deepEqual(await ids(), all.slice(0, 48).map((it) => it.id));
  assert.equal(await page.isHidden('#history-more'), all.length <= 48);

  // Label filter.
  await page.fill('#h-label', 'car');
  await page.click('#history-filter button[type="submit"]');
  const cars = await relay.listAll('label=car');
  assert.ok(cars.length >= 5, `seeded cars: ${cars.length}`);
  await page.waitForFunction(
    (n) => {
      const lis = [...document.querySelectorAll('#history-list > li[data-id]')];
      return lis.length === n && lis.every((li) => li.querySelector('.label').textContent === 'car');
    },
    Math.min(24, cars.length),
    { timeout: WAIT_MS },
  );
  assert.deepEqual(await ids(), cars.slice(0, 24).map((it) => it.id));

  // Label and minimum score together.
  await page.fill('#h-score', '0.8');
  await page.click('#history-filter button[type="submit"]');
  const good = await relay.listAll('label=car&min_score=0.8');
  assert.ok(good.length > 0 && good.length < cars.length, `cars >= 0.8: ${good.length} of ${cars.length}`);
  await page.waitForFunction(
    (n) => document.querySelectorAll('#history-list > li[data-id]').length === n,
    good.length,
    { timeout: WAIT_MS },
  );
  assert.deepEqual(await ids(), good.map((it) => it.id));
  await shot(page, 'history-filtered');
});

test('a detail shows the stored JSON and image; an admin deletes it', async () => {
  const first = await page.$eval('#history-list > li[data-id]', (li) => li.dataset.id);
  await page.click(`#history-list > li[data-id="${first}"] button.card`);
  await page.waitForSelector('#detail[open] .json-text', { timeout: WAIT_MS });
  const shown = JSON.parse(await page.textContent('#detail .json-text'));
  const stored = await relay.getJson(`/api/v1/inferences/${first}`);
  assert.equal(shown.id, first);
  assert.deepEqual(shown.result, stored.result);
  assert.equal(shown.seq, stored.seq);
  if (stored.image) {
    await page.waitForSelector('#detail .media.loaded', { timeout: WAIT_MS });
    const box = stored.result.bounding_boxes[0];
    assertBoxOnImage(await boxGeometry(page, '#detail .detail-figure', box.label), box, 'detail');
  }
  await shot(page, 'detail');

  // Delete, with its confirmation step.
  await page.click('#detail .delete-wrap button:has-text("Delete…")');
  await page.click('#detail button:has-text("Delete for good")');
  await page.waitForFunction(() => !document.querySelector('#detail').open, null, { timeout: WAIT_MS });
  assert.equal((await relay.request('GET', `/api/v1/inferences/${first}`, { token: TOKENS.read })).status, 404);
  await page.waitForSelector(`#history-list > li[data-id="${first}"]`, { state: 'detached', timeout: WAIT_MS });

  await page.click('#history-reset');
  await page.waitForFunction(() => document.querySelectorAll('#history-list > li[data-id]').length === 24, null, {
    timeout: WAIT_MS,
  });
});

test('status: forwarding off, queue and dead letters, storage, sources', async () => {
  await showTab(page, 'status');
  const fwd = await relay.getJson('/api/v1/forwarder');
  assert.equal(fwd.state, 'disabled');
  await page.waitForSelector('#fwd-state[data-state="disabled"]', { timeout: WAIT_MS });
  assert.equal(await page.textContent('#fwd-state'), 'off');
  assert.equal(await page.textContent('#st-fwd-body dd[data-fact="queue_depth"]'), String(fwd.queue_depth));
  assert.equal(await page.textContent('#st-fwd-body dd[data-fact="dead"]'), String(fwd.dead));
  assert.equal(await page.textContent('#st-fwd-body dd[data-fact="dropped"]'), String(fwd.dropped));
  assert.equal((await page.textContent('#pill-cloud .pill-text')).trim(), 'Cloud: off');
  assert.match(await page.textContent('#st-store-body dd[data-fact="db_bytes"]'), /^\d+(\.\d)? (KB|MB)$/);
  // The runner-ws source, connected to the fake runner, with the inference it delivered.
  await page.waitForSelector('#st-src-body tbody th:has-text("camera")', { timeout: WAIT_MS });
  const src = (await relay.getJson('/api/v1/sources')).sources[0];
  const row = await page.$$eval('#st-src-body tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  assert.deepEqual(row[0].slice(0, 4), ['camera', 'runner-ws', 'running', String(src.inferences)]);
  assert.equal(src.inferences, 1);
  // The model, from the runner's hello.
  const model = await page.$$eval('#st-model-body dt', (dts) =>
    Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])),
  );
  assert.equal(model.Project, 'ball-finder (ei-relay tests)');
  assert.equal(model['Deploy version'], '7');
  assert.equal(model.Input, '96×96 × 3');
  assert.equal(model['Model type'], 'object_detection');
  assert.deepEqual(await page.$$eval('#st-model-body .chips li', (lis) => lis.map((li) => li.textContent)), ['ball']);
  await page.waitForSelector('#st-live-body .badge[data-state="live"]', { timeout: WAIT_MS });
  await shot(page, 'status');
});

test('forwarding on: the status follows the MQTT broker going away and coming back', async () => {
  // A second relay that forwards to Debian's mosquitto (TLS client certificates), through the
  // black-box tier's broker harness.
  const broker = new PyHelper('broker.py');
  const { config } = await broker.start();
  const fwdRelay = new Relay(config);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await ctx.newPage();
  watch(p);
  try {
    await fwdRelay.start();
    await p.goto(`${fwdRelay.base}/#status`);
    await signIn(p, TOKENS.admin);
    await p.waitForSelector('#fwd-state[data-state="connected"]', { timeout: WAIT_MS });
    assert.equal((await p.textContent('#pill-cloud .pill-text')).trim(), 'Cloud: connected');
    assert.equal(await p.textContent('#fwd-state'), 'connected');
    assert.match(await p.textContent('#st-fwd-body .lead'), new RegExp(`localhost:${config.mqtt_port}`));

    // Broker gone: the live `forwarder` messages turn the pill, and the queue grows.
    await broker.command({ cmd: 'stop' });
    await p.waitForSelector('#pill-cloud[data-state="backoff"]', { timeout: WAIT_MS });
    const box = { x: 30, y: 30, width: 40, height: 40 };
    await fwdRelay.ingest(detection('car', 0.8, box));
    await fwdRelay.ingest(detection('dog', 0.7, box));
    await p.waitForFunction(
      () => document.querySelector('#pill-cloud .pill-text').textContent === 'Cloud: retrying · 2 queued',
      null,
      { timeout: WAIT_MS },
    );
    await p.waitForFunction(() => document.querySelector('#st-fwd-body dd[data-fact="queue_depth"]')?.textContent === '2', null, {
      timeout: WAIT_MS,
    });
    assert.equal(await p.textContent('#fwd-state'), 'retrying');
    const fwd = await fwdRelay.getJson('/api/v1/forwarder');
    assert.equal(fwd.queue_depth, 2);
    if (fwd.last_error) assert.ok(await p.isVisible('#st-fwd-body dd.error-text'), 'the last error is shown');
    await shot(p, 'status-forwarder-backoff');

    // Back: connected again, the queue drains to 0.
    await broker.command({ cmd: 'start' });
    await p.waitForFunction(
      () => document.querySelector('#pill-cloud .pill-text').textContent === 'Cloud: connected',
      null,
      { timeout: 20000 },
    );
    await p.waitForFunction(() => document.querySelector('#st-fwd-body dd[data-fact="queue_depth"]')?.textContent === '0', null, {
      timeout: WAIT_MS,
    });
    assert.equal((await fwdRelay.getJson('/api/v1/forwarder')).queue_depth, 0);
  } finally {
    await ctx.close();
    await fwdRelay.stop().finally(() => fwdRelay.cleanup());
    await broker.stop();
  }
});

test('charts follow /api/v1/stats', async () => {
  await showTab(page, 'charts');
  await page.waitForSelector('#chart-count svg rect', { timeout: WAIT_MS });
  const range = await page.$eval('#chart-range', (s) => s.value);
  assert.equal(range, '24h');
  const until = Math.ceil(Date.now() / 3600e3) * 3600e3;
  const stats = await relay.getJson(`/api/v1/stats?since=${until - 24 * 3600e3}&until=${until}&bucket=1h`);
  const labels = Object.keys(stats.label_occurrences).sort();
  const legend = (await page.$$eval('#chart-legend .legend-item', (bs) => bs.map((b) => b.dataset.label))).sort();
  assert.deepEqual(legend, labels);
  for (const label of labels) {
    // bars count inferences by top class; the confidence line is over the label's occurrences
    const bars = await page.$$eval(`#chart-count rect[data-label="${label}"]`, (rs) => rs.length);
    assert.equal(bars, stats.top_labels[label].length, `bars of ${label}`);
    const points = await page.$$eval(`#chart-score g[data-label="${label}"] circle`, (cs) => cs.length);
    assert.equal(points, stats.label_occurrences[label].length, `points of ${label}`);
  }
  // Hiding a label from the legend removes its bars.
  await page.click('#chart-legend .legend-item[data-label="dog"]');
  await page.waitForFunction(() => document.querySelectorAll('#chart-count rect[data-label="dog"]').length === 0, null, {
    timeout: WAIT_MS,
  });
  assert.equal(await page.getAttribute('#chart-legend .legend-item[data-label="dog"]', 'aria-pressed'), 'false');
  await page.click('#chart-legend .legend-item[data-label="dog"]');
  await shot(page, 'charts');
});

test('the relay restarts: the page reconnects and resumes without a gap', async () => {
  await showTab(page, 'live');
  const posted = [];
  const post = async (i) => {
    const box = { x: 10 + i * 12, y: 20, width: 30, height: 40 };
    const doc = detection(LABELS[i % 3], 0.7 + i / 100, box);
    posted.push((await relay.ingest(doc, { jpeg: await paintJpeg([box], i) })).id);
  };
  const onScreen = (ids) =>
    page.waitForFunction((ids) => ids.every((id) => document.querySelector(`#live-list > li[data-id="${id}"]`)), ids, {
      timeout: WAIT_MS,
    });
  await post(0);
  await post(1);
  await onScreen(posted);

  await relay.stop();
  await page.waitForSelector('#live-state[data-state="reconnecting"]', { timeout: WAIT_MS });
  // Keep the page away until the relay has new inferences it never saw live.
  await context.setOffline(true);
  await relay.start();
  for (let i = 2; i < 5; i++) await post(i);
  await context.setOffline(false);
  const t0 = Date.now();
  await page.waitForSelector('#live-state[data-state="live"]', { timeout: 20000 });
  await onScreen(posted);
  console.log(`# reconnect: live again and caught up ${Date.now() - t0} ms after the network came back`);
  for (let i = 5; i < 7; i++) await post(i);
  await onScreen(posted);

  // No gap, no duplicate: the live list holds exactly the stored inferences between the first
  // and the last posted here, in seq order.
  const cards = await liveSeqs(page);
  const ids = cards.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length, 'a card is shown twice');
  const seqs = cards.map((c) => c.seq);
  assert.deepEqual([...seqs].sort((a, b) => b - a), seqs, 'cards out of seq order');
  const stored = (await relay.getJson('/api/v1/inferences?limit=50')).items;
  const firstSeq = stored.find((it) => it.id === posted[0]).seq;
  const expected = stored.filter((it) => it.seq >= firstSeq).map((it) => it.id);
  assert.equal(expected.length, 7);
  assert.deepEqual(ids.slice(0, expected.length), expected);
  assert.ok(await page.isVisible('#live-list > li.notice:has-text("Reconnected")'), 'a reconnect notice');
  await shot(page, 'live-after-restart');
});

test('the live filter: the relay sends only matching inferences', async () => {
  await page.click('#live-filter-box > summary');
  await page.fill('#live-label', 'car');
  await page.click('#live-filter button[type="submit"]');
  // The summary shows the filter once the relay confirmed it (`subscribed`).
  await page.waitForFunction(() => document.querySelector('#live-filter-summary').textContent === '(label car)', null, {
    timeout: WAIT_MS,
  });
  await page.waitForFunction(
    () => {
      const lis = [...document.querySelectorAll('#live-list > li[data-id]')];
      return lis.length > 0 && lis.every((li) => li.querySelector('.label').textContent === 'car');
    },
    null,
    { timeout: WAIT_MS },
  );
  const box = { x: 60, y: 40, width: 30, height: 30 };
  const dog = await relay.ingest(detection('dog', 0.93, box));
  const car = await relay.ingest(detection('car', 0.88, box));
  await page.waitForSelector(`#live-list > li[data-id="${car.id}"]`, { timeout: WAIT_MS });
  // The dog was stored first: had it passed the filter it would be on screen before the car.
  assert.equal(await page.$(`#live-list > li[data-id="${dog.id}"]`), null, 'the dog passed the label filter');
  await page.click('#live-filter-reset');
  await page.waitForFunction(() => document.querySelector('#live-filter-summary').textContent === '(showing everything)', null, {
    timeout: WAIT_MS,
  });
  await page.waitForSelector(`#live-list > li[data-id="${dog.id}"]`, { timeout: WAIT_MS }); // from the cache again
  await page.click('#live-filter-box > summary');
});

// ---- issue 14: counts by top class, "last hour" from the store -----------------------------

// A gesture classification (the four classes of the report): top gets score, the
// others share the rest, idle always lowest: never the top class.
function gesture(top, score, ts) {
  const rest = Math.round(((1 - score) / 3) * 1e4) / 1e4;
  const classification = { idle: rest / 2, snake: rest, updown: rest, wave: rest, [top]: score };
  return { result: { classification }, ...(ts ? { ts } : {}) };
}

// The Live "Last hour" box as numbers: {total line, label -> count}.
async function hourBox(p) {
  return p.$eval('#hour-stats', (box) => ({
    total: box.querySelector('.hour-total')?.textContent || box.textContent,
    rows: Object.fromEntries(
      [...box.querySelectorAll('tbody tr')].map((tr) => [tr.dataset.label, tr.querySelector('.hour-count').textContent]),
    ),
  }));
}

// What the box must show for a GET /api/v1/stats answer.
function hourExpected(doc) {
  const rows = Object.fromEntries(
    Object.entries(doc.top_totals)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 8)
      .map(([l, n]) => [l, n.toLocaleString('en-US')]),
  );
  const n = doc.inferences;
  const noTop = doc.no_top ? `, ${doc.no_top} without a class` : '';
  return { total: `${n} inference${n === 1 ? '' : 's'} in the last hour${noTop}`, rows };
}

// Waits until the box equals the REST stats of the last hour (query: the Live filter's
// parameters), asking REST again while they differ: rows can leave the hour between two reads.
async function hourMatchesRest(p, query = '') {
  const deadline = Date.now() + 3 * WAIT_MS;
  let shown;
  let want;
  for (;;) {
    const now = Date.now();
    const doc = await relay.getJson(`/api/v1/stats?since=${now - 3600e3}&until=${now}&bucket=1h${query}`);
    want = hourExpected(doc);
    try {
      await p.waitForFunction(
        (w) => {
          const box = document.querySelector('#hour-stats');
          const rows = [...box.querySelectorAll('tbody tr')];
          const total = box.querySelector('.hour-total')?.textContent || box.textContent;
          return (
            total === w.total &&
            rows.length === Object.keys(w.rows).length &&
            rows.every((tr) => w.rows[tr.dataset.label] === tr.querySelector('.hour-count').textContent)
          );
        },
        want,
        { timeout: 2500 },
      );
      return doc;
    } catch (e) {
      shown = await hourBox(p);
      if (Date.now() > deadline) {
        assert.deepEqual(shown, want, 'the Last hour box is not the REST stats of the last hour');
        throw e;
      }
    }
  }
}

test('Last hour and Charts count by top class, from the store by inference time (REST equal)', async () => {
  await showTab(page, 'live');
  const now = Date.now();
  // 6 gestures of now (wave 3, snake 2, updown 1; idle never on top), one anomaly-only (no
  // class), and a backfill of 4 waves 7 days old posted now: not "last hour".
  const docs = [
    gesture('wave', 0.9),
    gesture('wave', 0.8),
    gesture('snake', 0.85),
    gesture('wave', 0.7),
    gesture('snake', 0.6),
    gesture('updown', 0.75),
    { result: { anomaly: 3.21 } },
  ];
  for (let i = 0; i < 4; i++) docs.push(gesture('wave', 0.95, now - 7 * 24 * 3600e3 + i * 1000));
  for (const d of docs) await relay.ingest(d, { source: 'imu' });

  // Everything: the box equals REST (labels by top class; idle, never on top, not listed).
  await hourMatchesRest(page);
  assert.equal(await page.$('#hour-stats tr[data-label="idle"]'), null, 'idle counted though never the top class');

  // The Live filter (source imu): the box follows it.
  await page.click('#live-filter-box > summary');
  await page.fill('#live-source', 'imu');
  await page.click('#live-filter button[type="submit"]');
  let doc = await hourMatchesRest(page, '&source=imu');
  assert.deepEqual(doc.top_totals, { idle: 0, snake: 2, updown: 1, wave: 3 }, 'REST: the backfill is not last hour');
  assert.equal(doc.inferences, 7);
  assert.deepEqual((await hourBox(page)).rows, { wave: '3', snake: '2', updown: '1' });
  await shot(page, 'live-last-hour-filtered');

  // A relay restart: the box shows what is stored, plus what arrives after.
  await relay.stop();
  await page.waitForSelector('#live-state[data-state="reconnecting"]', { timeout: WAIT_MS });
  await relay.start();
  await page.waitForSelector('#live-state[data-state="live"]', { timeout: 20000 });
  await relay.ingest(gesture('wave', 0.88), { source: 'imu' });
  doc = await hourMatchesRest(page, '&source=imu');
  assert.equal(doc.top_totals.wave, 4, 'REST after the restart');
  assert.deepEqual((await hourBox(page)).rows, { wave: '4', snake: '2', updown: '1' });
  await page.click('#live-filter-reset');
  await page.waitForFunction(() => document.querySelector('#live-filter-summary').textContent === '(showing everything)', null, {
    timeout: WAIT_MS,
  });
  await page.click('#live-filter-box > summary');

  // Charts: the legend's counts are by top class, equal to REST over the chart's range.
  await showTab(page, 'charts');
  await page.selectOption('#chart-range', '24h');
  const until = Math.ceil(Date.now() / 3600e3) * 3600e3;
  const stats = await relay.getJson(`/api/v1/stats?since=${until - 24 * 3600e3}&until=${until}&bucket=1h`);
  const legendCounts = () =>
    page.$$eval('#chart-legend .legend-item', (bs) =>
      Object.fromEntries(bs.map((b) => [b.dataset.label, b.querySelector('.legend-n').textContent.split(' · ')[0]])),
    );
  const want = Object.fromEntries(Object.entries(stats.top_totals).map(([l, n]) => [l, n.toLocaleString('en-US')]));
  await page.waitForFunction(
    (w) =>
      [...document.querySelectorAll('#chart-legend .legend-item')].every(
        (b) => w[b.dataset.label] === b.querySelector('.legend-n').textContent.split(' · ')[0],
      ) && document.querySelectorAll('#chart-legend .legend-item').length === Object.keys(w).length,
    want,
    { timeout: WAIT_MS },
  ).catch(async (e) => {
    assert.deepEqual(await legendCounts(), want, 'chart legend counts != REST top_totals');
    throw e;
  });
  assert.equal(want.idle, '0', 'REST: idle is never the top class');
  // one bar per bucket where a label was the top class
  for (const [label, points] of Object.entries(stats.top_labels)) {
    assert.equal(await page.$$eval(`#chart-count rect[data-label="${label}"]`, (rs) => rs.length), points.length, `bars of ${label}`);
  }
  await shot(page, 'charts-top-class');
  await showTab(page, 'live');
});

test('controls have accessible names; tabs work from the keyboard', async () => {
  const unnamed = await page.evaluate(() => {
    const name = (e) =>
      (e.getAttribute('aria-label') ||
        (e.labels && [...e.labels].map((l) => l.textContent).join(' ')) ||
        (e.getAttribute('aria-labelledby') &&
          e
            .getAttribute('aria-labelledby')
            .split(' ')
            .map((id) => document.getElementById(id)?.textContent || '')
            .join(' ')) ||
        e.textContent ||
        e.title ||
        '').trim();
    return [...document.querySelectorAll('button, input, select, [role="tab"], [role="tabpanel"], a[href]')]
      .filter((e) => e.getClientRects().length > 0 || e.closest('[role="tabpanel"]'))
      .filter((e) => !name(e))
      .map((e) => e.outerHTML.slice(0, 120));
  });
  assert.deepEqual(unnamed, []);
  await page.focus('#tab-live');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getAttribute('#tab-history', 'aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-history');
  await page.keyboard.press('End');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-status');
  await page.keyboard.press('Home');
  assert.equal(await page.isVisible('#view-live'), true);
  // A card opens its detail with the keyboard, Escape closes it.
  await page.focus('#live-list > li[data-id] button.card');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail[open]', { timeout: WAIT_MS });
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('#detail').open, null, { timeout: WAIT_MS });
});

test('a phone-sized screen: no horizontal scroll; a read token cannot delete; sign out', async () => {
  const phone = await browser.newContext({
    viewport: { width: 375, height: 812 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const p = await phone.newPage();
  watch(p);
  try {
    const box = { x: 52, y: 24, width: 44, height: 70 };
    await relay.ingest(detection('person', 0.87, box), { jpeg: await paintJpeg([{ ...box, color: '#3cb4e6' }], 5) });
    await p.goto(`${relay.base}/`);
    await signIn(p, TOKENS.read);
    await p.waitForSelector('#live-state[data-state="live"]', { timeout: WAIT_MS });
    await p.waitForSelector('#featured .media.loaded', { timeout: WAIT_MS });
    await noHorizontalScroll(p, 'live');
    await shot(p, 'phone-live');
    // Thumbnails load once their card is on screen.
    await p.$eval('#live-list', (e) => e.scrollIntoView());
    await p.waitForSelector('#live-list > li[data-id] .media.loaded', { timeout: WAIT_MS });
    await showTab(p, 'history');
    await p.waitForSelector('#history-list > li[data-id]', { timeout: WAIT_MS });
    await noHorizontalScroll(p, 'history');
    await shot(p, 'phone-history');
    await showTab(p, 'charts');
    await p.waitForSelector('#chart-count svg', { timeout: WAIT_MS });
    await noHorizontalScroll(p, 'charts');
    await showTab(p, 'status');
    await p.waitForSelector('#fwd-state', { timeout: WAIT_MS });
    await noHorizontalScroll(p, 'status');
    await shot(p, 'phone-status');

    // Detail as a read-only user: no delete control, and the dialog fits the screen.
    await showTab(p, 'live');
    const withImage = await p.$eval('#live-list > li[data-id]:has(.media.loaded)', (li) => li.dataset.id);
    await p.click(`#live-list > li[data-id="${withImage}"] button.card`);
    await p.waitForSelector('#detail[open] .media.loaded', { timeout: WAIT_MS });
    assert.equal(await p.$$eval('#detail .delete-wrap', (e) => e.length), 0);
    const d = await p.$eval('#detail', (e) => ({ sw: e.scrollWidth, cw: e.clientWidth, w: e.getBoundingClientRect().width }));
    assert.ok(d.sw <= d.cw && d.w <= 375, `detail ${JSON.stringify(d)}`);
    await shot(p, 'phone-detail');
    await p.click('#detail .close');

    await p.click('#logout');
    await p.waitForSelector('#login:not([hidden])', { timeout: WAIT_MS });
    assert.equal(await p.evaluate(() => sessionStorage.getItem('ei-relay.token')), null);
    assert.equal(await p.isHidden('#app'), true);
  } finally {
    await phone.close();
  }
});

// ---- numbers on the page (issue 14): each test opens its own signed-in page ----------------

// A new context signed in with the admin token, the live stream connected.
async function openSignedIn(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', ...opts });
  const p = await ctx.newPage();
  watch(p);
  await p.goto(`${relay.base}/`);
  await signIn(p, TOKENS.admin);
  await p.waitForSelector('#live-state[data-state="live"]', { timeout: WAIT_MS });
  return { ctx, p };
}

async function chartRange(p, value) {
  await p.selectOption('#chart-range', value);
  await p.waitForFunction(
    (v) => document.querySelector('#chart-range').value === v && document.querySelector('#chart-count svg rect'),
    value,
    { timeout: WAIT_MS },
  );
}

test('anomaly scores are raw numbers on the card, in the detail and in charts, never a percentage', async () => {
  const { ctx, p } = await openSignedIn();
  try {
    const grid = [
      { label: 'anomaly', value: 7.9, x: 8, y: 8, width: 32, height: 32 },
      { label: 'anomaly', value: 1.25, x: 48, y: 8, width: 32, height: 32 },
    ];
    const va = await relay.ingest(
      { result: { bounding_boxes: [], visual_anomaly_grid: grid, visual_anomaly_max: 7.9, visual_anomaly_mean: 4.575 }, model: MODEL },
      { jpeg: await paintJpeg([], 11), source: 'qa' },
    );
    const km = await relay.ingest({ result: { classification: { 'belt-ok': 0.83, 'belt-slip': 0.17 }, anomaly: 3.21 } }, { source: 'qa' });
    const vaRest = await relay.getJson(`/api/v1/inferences/${va.id}`);
    const kmRest = await relay.getJson(`/api/v1/inferences/${km.id}`);
    assert.equal(vaRest.kind, 'visual-anomaly');
    assert.equal(vaRest.top_score, 7.9);
    assert.equal(kmRest.anomaly, 3.21);

    // Cards: the visual-anomaly score as it is; the K-means score next to the classification.
    const vaCard = `#live-list > li[data-id="${va.id}"]`;
    const kmCard = `#live-list > li[data-id="${km.id}"]`;
    await p.waitForSelector(`${vaCard} .score`, { timeout: WAIT_MS });
    await p.waitForSelector(`${kmCard} .score`, { timeout: WAIT_MS });
    assert.equal(await p.textContent(`${vaCard} .score`), vaRest.top_score.toFixed(2)); // "7.90"
    assert.doesNotMatch(await p.textContent(vaCard), /%/);
    assert.equal(await p.textContent(`${kmCard} .label`), kmRest.top_label);
    assert.equal(await p.textContent(`${kmCard} .score`), `${Math.round(kmRest.top_score * 100)} %`);
    assert.equal(await p.textContent(`${kmCard} .anomaly-score`), kmRest.anomaly.toFixed(2)); // "3.21"
    assert.match(await p.getAttribute(`${kmCard} button.card`, 'aria-label'), /anomaly 3\.21/);
    await shot(p, 'anomaly-cards');

    // Details: the title, the cells' values and the anomaly fact are raw scores.
    await p.click(`${vaCard} button.card`);
    await p.waitForSelector('#detail[open] .json-text', { timeout: WAIT_MS });
    assert.equal(await p.textContent('#detail-title'), `anomaly · ${vaRest.top_score.toFixed(2)}`);
    const cells = await p.$$eval('#detail .scores tbody td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(cells, vaRest.result.visual_anomaly_grid.map((c) => c.value).sort((a, b) => b - a).map((v) => v.toFixed(2)));
    assert.equal(await p.textContent('#detail dd[data-fact="Anomaly"]'), vaRest.anomaly.toFixed(2));
    assert.doesNotMatch(await p.textContent('#detail .detail-side'), /%/);
    await shot(p, 'anomaly-detail');
    await p.click('#detail .close');
    await p.click(`${kmCard} button.card`);
    await p.waitForSelector('#detail[open] .json-text', { timeout: WAIT_MS });
    assert.equal(await p.textContent('#detail dd[data-fact="Anomaly"]'), kmRest.anomaly.toFixed(2));
    await p.click('#detail .close');

    // Charts: the anomaly label is counted, but its scores never enter the percentage chart;
    // its legend shows the raw mean of /api/v1/stats.
    await showTab(p, 'charts');
    await chartRange(p, '1h');
    await p.waitForSelector('#chart-legend .legend-item[data-label="anomaly"]', { timeout: WAIT_MS });
    const until = Math.ceil(Date.now() / 120e3) * 120e3;
    const stats = await relay.getJson(`/api/v1/stats?since=${until - 3600e3}&until=${until}&bucket=2m`);
    // the legend: inferences by top class, then the mean over the label's occurrences
    const pts = stats.label_occurrences.anomaly;
    const seen = pts.reduce((a, q) => a + q.count, 0);
    const mean = pts.reduce((a, q) => a + q.count * q.mean_score, 0) / seen;
    const n = stats.top_totals.anomaly;
    assert.ok(mean > 1, `stats mean of anomaly ${mean}`);
    assert.equal(await p.textContent('#chart-legend .legend-item[data-label="anomaly"] .legend-n'), `${n} · ${mean.toFixed(2)}`);
    assert.equal(await p.$$eval('#chart-score g[data-label="anomaly"]', (g) => g.length), 0);
    assert.ok((await p.$$eval('#chart-count rect[data-label="anomaly"]', (r) => r.length)) > 0, 'anomaly counted');
    assert.ok((await p.$$eval('#chart-score g[data-label="belt-ok"] circle', (c) => c.length)) > 0, 'belt-ok in the score chart');
  } finally {
    await ctx.close();
  }
});

test('label colours come from the label: the same in every view and page load, whatever the order', async () => {
  const LABELS2 = ['kestrel', 'otter'];
  const post = async (label, seed) => {
    const box = { x: 30, y: 20, width: 40, height: 50 };
    return (await relay.ingest(detection(label, 0.8, box), { jpeg: await paintJpeg([box], seed), source: 'gate' })).id;
  };
  // A computed colour, read in one step (the legend may be redrawn between a query and a read).
  const colourOf = async (p, sel, prop) =>
    (
      await p.waitForFunction(({ sel, prop }) => {
        const e = document.querySelector(sel);
        return (e && getComputedStyle(e)[prop]) || null;
      }, { sel, prop }, { timeout: WAIT_MS })
    ).jsonValue();
  // The colour of each label's box on its live card, and of its swatch in the charts' legend.
  const colours = async (p, ids) => {
    const out = {};
    for (const [label, id] of Object.entries(ids)) {
      const sel = `#live-list > li[data-id="${id}"] .box[data-label="${label}"]`;
      out[label] = { live: await colourOf(p, sel, 'borderTopColor') };
    }
    await showTab(p, 'charts');
    for (const label of Object.keys(ids)) {
      const sel = `#chart-legend .legend-item[data-label="${label}"] .swatch`;
      out[label].chart = await colourOf(p, sel, 'backgroundColor');
    }
    await showTab(p, 'live');
    return out;
  };
  const a = await openSignedIn();
  let first;
  try {
    const ids = {};
    for (const [i, label] of LABELS2.entries()) ids[label] = await post(label, 40 + i); // kestrel, then otter
    first = await colours(a.p, ids);
  } finally {
    await a.ctx.close();
  }
  const b = await openSignedIn();
  try {
    const ids = {};
    for (const [i, label] of [...LABELS2].reverse().entries()) ids[label] = await post(label, 50 + i); // otter first
    const second = await colours(b.p, ids);
    for (const label of LABELS2) {
      assert.equal(first[label].live, first[label].chart, `${label}: live and charts`);
      assert.deepEqual(second[label], first[label], `${label}: the second page load`);
    }
  } finally {
    await b.ctx.close();
  }
});

test('chart axes: dated 7-day ticks, no overlapping tick labels, the time zone shown', async () => {
  // A zone half an hour off the UTC-aligned buckets, so local midnights fall inside buckets.
  const timezoneId = 'Asia/Kolkata';
  const now = Date.now();
  for (const days of [2, 5]) {
    await relay.ingest(detection('heron', 0.7, { x: 10, y: 10, width: 20, height: 20 }, { ts: now - days * 86400e3 }), { source: 'qa' });
  }
  const { ctx, p } = await openSignedIn({ timezoneId });
  // The dates of the days around the 7-day range, as the page should write them there.
  const dayOf = new Intl.DateTimeFormat('en-US', { timeZone: timezoneId, weekday: 'short', day: 'numeric', month: 'short' });
  const dates = new Set();
  for (let t = now - 9 * 86400e3; t < now + 2 * 86400e3; t += 3600e3) dates.add(dayOf.format(t));
  try {
    await showTab(p, 'charts');
    // Chromium may name the zone by its older alias.
    assert.match(await p.textContent('#chart-tz'), /^Times in browser time: Asia\/(Kolkata|Calcutta), UTC\+05:30$/);
    for (const width of [1280, 375]) {
      await p.setViewportSize({ width, height: 900 });
      for (const range of ['7d', '24h', '6h', '1h']) {
        await chartRange(p, range);
        await p.waitForFunction((w) => {
          const s = document.querySelector('#chart-count svg');
          return s && Number(s.getAttribute('width')) <= w;
        }, width, { timeout: WAIT_MS });
        for (const chart of ['#chart-count', '#chart-score']) {
          const m = await p.$eval(chart, (root) => {
            const svgEl = root.querySelector('svg');
            const r = (e) => {
              const b = e.getBoundingClientRect();
              return { l: b.left, r: b.right, t: b.top, b: b.bottom };
            };
            return {
              svg: r(svgEl),
              // x-axis labels: the tick texts below the plot (y labels sit beside it)
              ticks: [...svgEl.querySelectorAll('text.tick')]
                .filter((t) => Number(t.getAttribute('y')) > Number(svgEl.getAttribute('height')) - 20)
                .map((t) => ({ ...r(t), text: t.textContent })),
            };
          });
          const what = `${chart} ${range} at ${width} px`;
          assert.ok(m.ticks.length >= 2, `${what}: ${m.ticks.length} tick labels`);
          for (const [i, t] of m.ticks.entries()) {
            assert.ok(t.l >= m.svg.l - 0.5 && t.r <= m.svg.r + 0.5, `${what}: "${t.text}" outside the chart`);
            const next = m.ticks[i + 1];
            if (next) assert.ok(t.r <= next.l, `${what}: "${t.text}" overlaps "${next.text}"`);
          }
          if (range === '7d') {
            assert.ok(m.ticks.length >= 3, `${what}: dates`);
            for (const t of m.ticks) assert.ok(dates.has(t.text), `${what}: "${t.text}" is not a date of the range`);
          }
        }
        if (width === 375 && range === '7d') await shot(p, 'charts-7d-phone');
      }
    }
  } finally {
    await ctx.close();
  }
});

test('relay unreachable: a banner on every view with Retry now, Status marked stale, no old chart under the error', async () => {
  const { ctx, p } = await openSignedIn();
  let down = false;
  const updated = () => p.textContent('#status-updated');
  try {
    await showTab(p, 'status');
    await p.waitForFunction(() => /^Updated \d/.test(document.querySelector('#status-updated').textContent), null, { timeout: WAIT_MS });
    await showTab(p, 'charts');
    await p.waitForSelector('#chart-count svg rect', { timeout: WAIT_MS });
    assert.equal(await p.isHidden('#offline-banner'), true);

    await relay.stop();
    down = true;
    const stoppedAt = Date.now();
    await p.waitForSelector('#offline-banner:not([hidden])', { timeout: WAIT_MS });
    assert.match(await p.textContent('#offline-text'), /^The relay has been unreachable since \d{1,2}:\d\d:\d\d/);
    for (const tab of ['live', 'history', 'status', 'charts']) {
      await showTab(p, tab);
      assert.ok(await p.isVisible('#offline-banner'), `the banner on ${tab}`);
    }
    // Charts: another range cannot load; the old range's chart is not left under the error.
    await p.selectOption('#chart-range', '6h');
    await p.waitForSelector('#charts-error:not([hidden])', { timeout: WAIT_MS });
    assert.equal(await p.$$eval('#chart-count svg, #chart-score svg, #chart-legend .legend-item', (e) => e.length), 0);
    await shot(p, 'unreachable-charts');
    // Status: the figures are marked stale, since when, not "Updated <time>".
    await showTab(p, 'status');
    await p.waitForSelector('#status-updated[data-stale="true"]', { timeout: WAIT_MS });
    const stale = await updated();
    assert.match(stale, /^Stale: no answer from the relay since \d{1,2}:\d\d:\d\d.*; figures from \d{1,2}:\d\d:\d\d/);
    assert.doesNotMatch(stale, /Updated/);
    const since = await p.evaluate(() => Date.now());
    assert.ok(since - stoppedAt < WAIT_MS);
    await shot(p, 'unreachable-status');

    // Back: "Retry now" (named, from the keyboard) reconnects; the banner and the mark clear.
    await relay.start();
    down = false;
    assert.equal(await p.getAttribute('#offline-retry', 'type'), 'button');
    assert.equal((await p.textContent('#offline-retry')).trim(), 'Retry now');
    await p.focus('#offline-retry');
    await p.keyboard.press('Enter');
    await p.waitForSelector('#live-state[data-state="live"]', { state: 'attached', timeout: WAIT_MS });
    await p.waitForSelector('#offline-banner', { state: 'hidden', timeout: WAIT_MS });
    await p.waitForSelector('#status-updated[data-stale="false"]', { timeout: WAIT_MS });
    assert.match(await updated(), /^Updated \d/);
    await showTab(p, 'charts');
    await p.waitForSelector('#chart-count svg rect', { timeout: WAIT_MS });
    assert.equal(await p.isHidden('#charts-error'), true);
  } finally {
    if (down) await relay.start();
    await ctx.close();
  }
});

// WCAG 2 contrast of every visible button's text against its own background (or the first
// opaque one behind it), from computed colours: at least 4.5:1 (AA for normal text).
async function buttonContrasts(p, scope) {
  return p.$$eval(`${scope} button`, (buttons) => {
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (e) => {
      for (let n = e; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    return buttons
      .filter((b) => b.getClientRects().length > 0 && !b.disabled && b.textContent.trim())
      .map((b) => {
        const fg = lum(rgb(getComputedStyle(b).color).slice(0, 3));
        const bg = lum(background(b));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        return { text: b.textContent.trim(), ratio: Math.round(ratio * 100) / 100 };
      });
  });
}

test('buttons meet WCAG AA contrast in both themes, Delete in the detail included', async () => {
  for (const colorScheme of ['light', 'dark']) {
    const { ctx, p } = await openSignedIn({ colorScheme });
    try {
      await p.waitForSelector('#live-list > li[data-id] button.card', { timeout: WAIT_MS });
      await p.click('#live-list > li[data-id] button.card');
      await p.waitForSelector('#detail[open] .delete-wrap button', { timeout: WAIT_MS });
      await p.click('#detail .delete-wrap button:has-text("Delete…")');
      await p.waitForSelector('#detail button:has-text("Delete for good")', { timeout: WAIT_MS });
      const found = [...(await buttonContrasts(p, '#detail')), ...(await buttonContrasts(p, 'header'))];
      assert.ok(found.some((b) => b.text === 'Delete for good'), `${colorScheme}: the Delete button is checked`);
      const low = found.filter((b) => b.ratio < 4.5);
      assert.deepEqual(low, [], `${colorScheme}: buttons under 4.5:1`);
      await shot(p, `detail-delete-${colorScheme}`);
      await p.keyboard.press('Escape');
    } finally {
      await ctx.close();
    }
  }
});

test('no page errors, nothing fetched from outside the relay', async () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(foreignRequests, []);
});
