// live.js - the dashboard's client of the relay's live stream (docs/live.md).
//
// It finds the WebSocket port in GET /api/v1/health (`ws_port`), connects to
// ws://<this host>:<ws_port>/api/v1/live (wss:// when the page came over https://: the relay
// serves both ports with TLS or neither), authenticates with its first message, and turns the
// server's messages into events. When the connection drops (the relay restarts, the network
// goes), it reconnects by itself with exponential backoff and jitter, and resumes with
// `since_seq` = the last seq it delivered, so the server fills the gap from its cache: no
// inference is lost or shown twice. A relay without a live server (no `ws_port` in health) is
// followed by polling the REST list instead, and upgraded to the WebSocket once one appears.
//
// Events (CustomEvent, detail = the message unless said otherwise): state ({name, ...}),
// hello, inference ({inference, committed_ms}), missed, forwarder, stats, subscribed, error,
// unauthorized, health (the health document).

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const HELLO_WAIT_MS = 8000; // after the upgrade, the hello must come within this
const PING_IDLE_MS = 15000; // quiet this long: send an application ping
const PONG_WAIT_MS = 10000; // no answer to it this long: the connection is dead
const POLL_MS = 2000; // REST polling when the relay has no live server
const POLL_PAGE = 100;

export class LiveClient extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.filter = {};
    this.lastSeq = null; // the newest seq delivered (or seeded by the view); null = none yet
    this.stopped = true;
    this.ws = null;
    this.timer = null;
    this.helloTimer = null;
    this.keepalive = null;
    this.pingSentAt = 0;
    this.lastRx = 0;
    this.attempt = 0;
    this.generation = 0;
    this.unauthorized = false;
    this.state = { name: 'offline' };
    this.role = null;
    this.hello = null;
    this.url = null;
    this.counters = { connects: 0, messages: 0, inferences: 0, missed: 0, duplicates: 0 };
    this.connectedSince = null;
    this.pollHealthEvery = 5; // polls between two looks for a live server
    this.polls = 0;
    this.onOnline = () => this.retryNow();
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.unauthorized = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.generation++;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.timer);
    clearTimeout(this.helloTimer);
    clearInterval(this.keepalive);
    this.timer = this.helloTimer = this.keepalive = null;
    this.detach('signed out', 1000);
    this.setState('offline');
  }

  // Closes the current connection without its close event doing anything.
  detach(reason, code = 4000) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    clearTimeout(this.helloTimer);
    clearInterval(this.keepalive);
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  // filter: {labels: [..], min_score: n, sources: [..]}; empty fields mean no constraint.
  setFilter(filter) {
    this.filter = cleanFilter(filter);
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.state.name === 'live') {
      this.send({ type: 'subscribe', ...this.filter });
    }
  }

  // The filter as REST query parameters (GET /api/v1/inferences, /api/v1/stats): one label and
  // one source at most there, so a list of several is left out (no constraint) rather than cut.
  restFilter() {
    const f = this.filter;
    return {
      label: f.labels && f.labels.length === 1 ? f.labels[0] : undefined,
      source: f.sources && f.sources.length === 1 ? f.sources[0] : undefined,
      min_score: f.min_score,
    };
  }

  // A reconnect that is waiting for its backoff goes now (a visible tab, the network is back).
  retryNow() {
    if (this.stopped || this.state.name !== 'reconnecting' || this.state.connecting) return;
    clearTimeout(this.timer);
    this.connect();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(name, extra = {}) {
    this.state = { name, since: Date.now(), ...extra };
    this.emit('state', this.state);
  }

  send(obj) {
    try {
      this.ws.send(JSON.stringify(obj));
    } catch {
      // closing: the close handler reconnects
    }
  }

  async connect() {
    if (this.stopped) return;
    const gen = ++this.generation;
    clearTimeout(this.timer);
    this.setState(this.attempt > 0 ? 'reconnecting' : 'connecting', { attempt: this.attempt, connecting: true });
    let health;
    try {
      health = await this.api.health();
    } catch (e) {
      if (gen === this.generation) this.retry('the relay is not reachable');
      return;
    }
    if (gen !== this.generation) return;
    this.emit('health', health);
    const port = Number(health && health.ws_port);
    if (!(port > 0 && port < 65536)) {
      this.startPolling(gen);
      return;
    }
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    this.url = `${scheme}://${window.location.hostname}:${port}/api/v1/live`;
    if (this.ws) this.detach('replaced'); // never two connections at once
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.retry(`cannot open ${this.url}`);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const auth = { type: 'auth', token: this.api.token };
      if (this.lastSeq !== null) auth.since_seq = this.lastSeq;
      if (Object.keys(this.filter).length > 0) auth.filter = this.filter;
      this.send(auth);
    };
    ws.onmessage = (ev) => this.onMessage(ws, ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // a close event follows
    this.helloTimer = setTimeout(() => this.drop(ws, 'no hello from the relay'), HELLO_WAIT_MS);
  }

  onMessage(ws, data) {
    if (ws !== this.ws) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    this.lastRx = Date.now();
    this.pingSentAt = 0;
    this.counters.messages++;
    switch (msg.type) {
      case 'hello':
        clearTimeout(this.helloTimer);
        this.attempt = 0;
        this.role = msg.role || null;
        this.hello = msg;
        this.counters.connects++;
        this.connectedSince = Date.now();
        this.startKeepalive(ws);
        this.setState('live', { url: this.url });
        this.emit('hello', msg);
        break;
      case 'inference': {
        const inf = msg.inference;
        if (!inf || typeof inf.seq !== 'number') return;
        if (this.lastSeq !== null && inf.seq <= this.lastSeq) {
          this.counters.duplicates++; // never expected: the server sends each seq once
          return;
        }
        this.lastSeq = inf.seq;
        this.counters.inferences++;
        this.emit('inference', msg);
        break;
      }
      case 'missed':
        this.counters.missed += Number(msg.count) || 0;
        this.emit('missed', msg);
        break;
      case 'forwarder':
      case 'stats':
      case 'subscribed':
      case 'deleted':
        this.emit(msg.type, msg);
        break;
      case 'error':
        if (msg.code === 'unauthorized' || msg.code === 'forbidden') { // forbidden: an ingest token
          this.unauthorized = true;
          this.emit('unauthorized', msg);
        } else {
          this.emit('error', msg);
        }
        break;
      default:
        break; // pong and types of later versions
    }
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearTimeout(this.helloTimer);
    clearInterval(this.keepalive);
    this.keepalive = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (this.stopped) return;
    if (this.unauthorized) {
      this.stopped = true;
      this.setState('unauthorized');
      return;
    }
    this.retry(reason || (code === 1006 ? 'connection lost' : `closed (${code})`));
  }

  // Gives up on a connection that looks dead without waiting for TCP to notice.
  drop(ws, reason) {
    if (ws !== this.ws) return;
    try {
      ws.close(4000, reason);
    } catch {
      // already closing
    }
    this.onClose(ws, 4000, reason);
  }

  startKeepalive(ws) {
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => {
      if (ws !== this.ws) return;
      const now = Date.now();
      if (this.pingSentAt && now - this.pingSentAt > PONG_WAIT_MS) {
        this.drop(ws, 'no answer to ping');
      } else if (!this.pingSentAt && now - this.lastRx > PING_IDLE_MS) {
        this.pingSentAt = now;
        this.send({ type: 'ping', id: now });
      }
    }, 2500);
  }

  retry(reason) {
    if (this.stopped) return;
    this.attempt++;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.attempt - 1));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
    this.setState('reconnecting', { attempt: this.attempt, retryAt: Date.now() + delay, reason });
  }

  // ---- REST polling, for a relay without a live server -------------------------------------

  startPolling(gen) {
    this.role = null;
    this.polls = 0;
    if (this.attempt > 0) this.attempt = 0;
    this.setState('polling');
    this.poll(gen);
  }

  async poll(gen) {
    if (gen !== this.generation || this.stopped) return;
    this.polls++;
    if (this.polls % this.pollHealthEvery === 0) {
      // Look for a live server now and then (the relay may have been upgraded).
      this.connect();
      return;
    }
    const params = { limit: POLL_PAGE, ...this.restFilter() };
    try {
      const page = await this.api.inferences(params);
      if (gen !== this.generation) return;
      const items = (page.items || []).filter((it) => this.lastSeq === null || it.seq > this.lastSeq);
      items.sort((a, b) => a.seq - b.seq);
      if (this.lastSeq === null) {
        // Nothing seeded: start from now.
        this.lastSeq = items.length ? items[items.length - 1].seq : 0;
      } else {
        for (const inference of items) {
          this.lastSeq = inference.seq;
          this.counters.inferences++;
          this.emit('inference', { type: 'inference', inference, committed_ms: null });
        }
      }
      if (this.state.name !== 'polling') this.setState('polling');
    } catch (e) {
      if (gen !== this.generation) return;
      if (e && e.status === 401) {
        this.unauthorized = true;
        this.stopped = true;
        this.emit('unauthorized', { code: 'unauthorized', message: e.message });
        this.setState('unauthorized');
        return;
      }
      this.retry('the relay is not reachable');
      return;
    }
    this.timer = setTimeout(() => this.poll(gen), POLL_MS);
  }
}

function cleanFilter(f) {
  const out = {};
  if (!f) return out;
  const list = (v) => (Array.isArray(v) ? v : v ? [v] : []).map((s) => String(s).trim()).filter(Boolean);
  const labels = list(f.labels);
  const sources = list(f.sources);
  if (labels.length) out.labels = labels;
  if (sources.length) out.sources = sources;
  const score = Number(f.min_score);
  if (f.min_score !== undefined && f.min_score !== null && f.min_score !== '' && Number.isFinite(score) && score > 0) {
    out.min_score = Math.min(1, score);
  }
  return out;
}
