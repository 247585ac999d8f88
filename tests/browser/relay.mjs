// relay.mjs - runs the real ei-relay binary for the browser tests: its own temp dir, a JSON
// config with free ports and known tokens, the dashboard served from the repository's web/.
// stop() asserts a clean exit (code 0, no sanitizer report), as the black-box tests do. With
// tls_cert_file/tls_key_file in the overrides it speaks HTTPS, trusting that certificate only
// (node:https with `ca`; Node's fetch takes no CA of its own).
//
// Environment: EI_RELAY_BIN (the built binary), EI_TEST_SOURCE_DIR (repository root).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TOKENS = {
  read: 'browser-read-token-0123456789',
  ingest: 'browser-ingest-token-0123456789',
  admin: 'browser-admin-token-0123456789',
};

// Headless Chromium's flags in every browser test: no sandbox (CI runs as root), nothing it would
// fetch or update on its own (the tests check the page talks to the relay only).
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

const SANITIZER_MARKERS = [
  'ERROR: AddressSanitizer',
  'ERROR: LeakSanitizer',
  'runtime error:',
  'SUMMARY: UndefinedBehaviorSanitizer',
];

export function sourceDir() {
  if (process.env.EI_TEST_SOURCE_DIR) return process.env.EI_TEST_SOURCE_DIR;
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export function relayBin() {
  const bin = process.env.EI_RELAY_BIN;
  if (!bin) throw new Error('EI_RELAY_BIN is not set (the path of the built ei-relay)');
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Requests one Relay has in flight at most. Node's fetch opens a keep-alive connection per
// concurrent request and keeps it open; the relay takes at most http_max_connections_per_ip (32)
// from one address and closes the rest at once, so an unbounded burst from the test (all on
// 127.0.0.1) would leave Chromium's own connections refused while the burst's sockets idle.
const MAX_IN_FLIGHT = 8;

export class Relay {
  constructor(overrides = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ei-browser-'));
    this.overrides = overrides;
    this.proc = null;
    this.starts = 0;
    this.logs = [];
    this.exitCode = null;
    this.inFlight = 0;
    this.waiting = []; // resolvers of requests waiting for a free slot, oldest first
  }

  async slot() {
    if (this.inFlight < MAX_IN_FLIGHT) {
      this.inFlight++;
      return;
    }
    await new Promise((r) => this.waiting.push(r)); // the slot is handed over by release()
  }

  release() {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }

  get base() {
    return `${this.ca ? 'https' : 'http'}://127.0.0.1:${this.cfg.http_port}`;
  }

  // The PEM the clients trust when the relay speaks HTTPS (its own certificate), else null.
  get ca() {
    const cert = this.overrides.tls_cert_file;
    return cert ? fs.readFileSync(cert) : null;
  }

  // fetch for plain HTTP; node:https trusting only the relay's certificate for HTTPS. Resolves to
  // { ok, status, text } (a string body: JSON and text only).
  async fetchText(url, opts = {}) {
    await this.slot();
    try {
      return await this.fetchOne(url, opts);
    } finally {
      this.release();
    }
  }

  async fetchOne(url, { method = 'GET', headers = {}, body } = {}) {
    if (!this.ca) {
      const res = await fetch(url, { method, headers, body });
      return { ok: res.ok, status: res.status, text: await res.text() };
    }
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, ca: this.ca }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode;
          resolve({ ok: status >= 200 && status < 300, status, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async configure() {
    const httpPort = await freePort();
    let wsPort = await freePort();
    while (wsPort === httpPort) wsPort = await freePort();
    this.cfg = {
      http_port: httpPort,
      ws_port: wsPort,
      bind: '127.0.0.1',
      db_path: path.join(this.dir, 'db', 'ei-relay.db'),
      web_root: path.join(sourceDir(), 'web'),
      log_level: 'info',
      cache_max_age: 0, // the tests post timestamps from the last hours
      // the service refuses root unless allowed; the tests run as root in CI
      ...(process.getuid && process.getuid() === 0 ? { allow_root: true } : {}),
      tokens: [
        { token: TOKENS.read, role: 'read' },
        { token: TOKENS.ingest, role: 'ingest' },
        { token: TOKENS.admin, role: 'admin' },
      ],
      ...this.overrides,
    };
  }

  // First start: picks ports (again, if another test took one meanwhile). Later starts reuse
  // them: the page must find the relay where it was.
  async start() {
    if (!this.cfg) await this.configure();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.startOnce();
        return;
      } catch (e) {
        const inUse = /Address already in use/.test(this.log());
        if (this.starts > 1 || attempt >= 2 || !inUse) throw e;
        await this.configure();
      }
    }
  }

  async startOnce() {
    fs.writeFileSync(path.join(this.dir, 'config.json'), JSON.stringify(this.cfg, null, 1));
    this.starts++;
    const logPath = path.join(this.dir, `relay-${this.starts}.log`);
    this.logs.push(logPath);
    const out = fs.openSync(logPath, 'w');
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('EI_RELAY_')) delete env[k];
    env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=0';
    env.UBSAN_OPTIONS ??= 'print_stacktrace=1';
    const proc = spawn(relayBin(), ['--config', path.join(this.dir, 'config.json')], {
      cwd: this.dir,
      env,
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.proc = proc;
    this.exitCode = null;
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exitCode = code === null ? `signal ${signal}` : code;
        resolve(this.exitCode);
      });
    });
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      if (this.exitCode !== null) {
        throw new Error(`ei-relay exited (${this.exitCode}) while starting:\n${this.log()}`);
      }
      try {
        const res = await this.fetchText(`${this.base}/api/v1/health`);
        if (res.ok) {
          const health = JSON.parse(res.text);
          if (health.ws_port !== this.cfg.ws_port) {
            throw new Error(`health.ws_port is ${health.ws_port}, configured ${this.cfg.ws_port}`);
          }
          return;
        }
      } catch (e) {
        if (/health\.ws_port/.test(e.message)) throw e;
      }
      await sleep(40);
    }
    throw new Error(`ei-relay not ready after 20 s:\n${this.log()}`);
  }

  // SIGTERM and a clean exit: code 0 and no sanitizer report.
  async stop() {
    if (!this.proc || this.exitCode !== null) return this.exitCode;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 20000);
    const code = await this.exited;
    clearTimeout(timer);
    const log = this.log();
    const marker = SANITIZER_MARKERS.find((m) => log.includes(m));
    if (code !== 0 || marker) {
      throw new Error(`ei-relay did not stop cleanly (exit ${code}${marker ? `, "${marker}"` : ''}):\n${log}`);
    }
    return code;
  }

  log() {
    const p = this.logs[this.logs.length - 1];
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  }

  allLogs() {
    return this.logs.map((p) => `--- ${path.basename(p)}\n${fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : ''}`).join('\n');
  }

  cleanup() {
    if (this.proc && this.exitCode === null) this.proc.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- REST ----

  async request(method, p, { token = TOKENS.admin, body, headers = {} } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    const res = await this.fetchText(`${this.base}${p}`, { method, headers: h, body });
    const { text } = res;
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // not JSON
    }
    return { status: res.status, json, text };
  }

  async ingest(doc, { jpeg = null, source = null } = {}) {
    const q = source ? `?source=${encodeURIComponent(source)}` : '';
    let res;
    if (jpeg) {
      const form = new FormData();
      form.append('json', new Blob([JSON.stringify(doc)], { type: 'application/json' }), 'inference.json');
      form.append('image', new Blob([jpeg], { type: 'image/jpeg' }), 'frame.jpg');
      res = await this.request('POST', `/api/v1/inferences${q}`, { token: TOKENS.ingest, body: form });
    } else {
      res = await this.request('POST', `/api/v1/inferences${q}`, {
        token: TOKENS.ingest,
        body: JSON.stringify(doc),
        headers: { 'Content-Type': 'application/json' },
      });
    }
    if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${res.text}`);
    return res.json;
  }

  async getJson(p, token = TOKENS.read) {
    const res = await this.request('GET', p, { token });
    if (res.status !== 200) throw new Error(`GET ${p} answered ${res.status}: ${res.text}`);
    return res.json;
  }

  // Every item of a list query, following the cursor.
  async listAll(query = '') {
    const items = [];
    let cursor = null;
    for (;;) {
      const sep = query ? '&' : '';
      const page = await this.getJson(
        `/api/v1/inferences?${query}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      items.push(...page.items);
      if (!page.next) return items;
      cursor = page.next;
    }
  }
}
