// status.js - the Status view and the top bar's pills: the MQTT forwarder (GET
// /api/v1/forwarder and live `forwarder` messages), the live connection, storage (GET
// /api/v1/health), the sources (GET /api/v1/sources) and the model (the live hello's `model`,
// else a runner-ws source's `model`). While the view is shown, REST is read every 5 s.

import { ApiError } from './api.js';
import { el, fact, formatAgo, formatBytes, formatCount, formatDuration, formatTime } from './util.js';

const REFRESH_MS = 5000;

const FORWARDER_TEXT = {
  disabled: 'off',
  connected: 'connected',
  connecting: 'connecting',
  backoff: 'retrying',
};

export class StatusView {
  // els: { fwd, live, store, model, sources, updated, pillLive, pillCloud, view (optional) }
  constructor(els, opts) {
    this.els = els;
    this.opts = opts; // { client(): LiveClient }
    this.api = null;
    this.visible = false;
    this.timer = null;
    this.generation = 0;
    this.forwarder = null; // the REST document, merged with live messages
    this.health = null;
    this.sources = null;
    this.model = null; // from hello
    this.updatedAt = null; // the last refresh the relay answered
    this.failedSince = null; // the first refresh since then that got no answer
    this.unreachableSince = null; // from the app: the live stream lost the relay then
  }

  start(api) {
    this.api = api;
    this.forwarder = this.sources = this.model = null;
    this.updatedAt = this.failedSince = this.unreachableSince = null;
    this.refresh();
  }

  stop() {
    this.api = null;
    this.generation++;
    clearTimeout(this.timer);
    this.els.pillLive.hidden = true;
    this.els.pillCloud.hidden = true;
  }

  shown(visible) {
    this.visible = visible;
    clearTimeout(this.timer);
    if (visible && this.api) this.refresh();
  }

  async refresh() {
    if (!this.api) return;
    const gen = ++this.generation;
    clearTimeout(this.timer);
    const [fwd, src, health] = await Promise.allSettled([
      this.api.forwarder(),
      this.visible || !this.sources ? this.api.sources() : null,
      this.visible ? this.api.health() : null,
    ]);
    if (gen !== this.generation) return;
    // Any HTTP answer means the relay is there; a network failure leaves the figures stale.
    const lost = [fwd, src, health].some((r) => r.status === 'rejected' && r.reason instanceof ApiError && r.reason.status === 0);
    if (lost) this.failedSince ??= Date.now();
    else {
      this.failedSince = null;
      this.updatedAt = Date.now();
    }
    if (fwd.status === 'fulfilled') this.forwarder = fwd.value;
    if (src.status === 'fulfilled' && src.value) this.sources = src.value.sources || [];
    if (health.status === 'fulfilled' && health.value) this.health = health.value;
    this.render();
    // Off screen, the pills still follow the forwarder now and then (live messages do the rest).
    this.timer = setTimeout(() => this.refresh(), this.visible ? REFRESH_MS : REFRESH_MS * 6);
  }

  // Something changed (an inference arrived): refresh soon if the view is shown, at most
  // every 2 s.
  poke() {
    if (!this.visible || !this.api || this.poked) return;
    this.poked = true;
    setTimeout(() => {
      this.poked = false;
      if (this.visible) this.refresh();
    }, 2000);
  }

  setHealth(h) {
    this.health = h;
    if (this.visible) this.renderStore();
  }

  onHello(hello) {
    this.model = hello.model || null;
    this.render();
  }

  // Live `forwarder` message: newer than the last REST read for the fields it carries.
  onForwarder(msg) {
    if (msg.enabled === false) {
      this.forwarder = { ...(this.forwarder || {}), state: 'disabled' };
    } else {
      const f = { ...(this.forwarder || {}) };
      for (const k of ['state', 'queue_depth', 'dead', 'dropped', 'last_error']) if (k in msg) f[k] = msg[k];
      this.forwarder = f;
    }
    this.renderPills();
    if (this.visible) this.renderForwarder();
  }

  render() {
    this.renderPills();
    if (!this.visible) return;
    this.renderForwarder();
    this.renderLive();
    this.renderStore();
    this.renderModel();
    this.renderSources();
    this.renderUpdated();
  }

  // The app's word on the relay: the time it was lost (live stream), or null when it is back.
  setUnreachable(since) {
    if (since === this.unreachableSince) return;
    this.unreachableSince = since;
    if (this.visible) this.renderUpdated();
  }

  // "Updated <time>" only for figures the relay just gave; else they are marked stale.
  renderUpdated() {
    const lost = [this.failedSince, this.unreachableSince].filter((t) => t !== null);
    const since = lost.length ? Math.min(...lost) : null;
    const at = this.updatedAt ? new Date(this.updatedAt).toLocaleTimeString() : null;
    let text = at ? `Updated ${at}` : '';
    if (since !== null) {
      text = `Stale: no answer from the relay since ${new Date(since).toLocaleTimeString()}${at ? `; figures from ${at}` : ''}`;
    }
    const u = this.els.updated;
    if (u.textContent !== text) u.textContent = text;
    u.dataset.stale = String(since !== null);
    if (this.els.view) this.els.view.classList.toggle('stale', since !== null);
  }

  renderPills() {
    const live = this.opts.client();
    const pl = this.els.pillLive;
    if (live) {
      const s = liveStateText(live.state);
      pl.hidden = false;
      pl.dataset.state = s.key;
      pl.querySelector('.pill-text').textContent = `Live: ${s.short}`;
      pl.setAttribute('aria-label', `Live stream ${s.long}. Open status`);
    }
    const f = this.forwarder;
    const pc = this.els.pillCloud;
    if (f) {
      const state = f.state || 'unknown';
      pc.hidden = false;
      pc.dataset.state = state;
      const q = typeof f.queue_depth === 'number' && f.queue_depth > 0 ? ` · ${formatCount(f.queue_depth)} queued` : '';
      pc.querySelector('.pill-text').textContent = `Cloud: ${FORWARDER_TEXT[state] || state}${q}`;
      pc.setAttribute('aria-label', `Cloud forwarder ${FORWARDER_TEXT[state] || state}${q}. Open status`);
    }
  }

  renderForwarder() {
    const f = this.forwarder;
    const box = this.els.fwd;
    if (!f) {
      box.replaceChildren(el('p', { class: 'muted', text: 'Forwarder status unavailable.' }));
      return;
    }
    const state = f.state || 'unknown';
    const badge = el('span', { class: 'badge', 'data-state': state, id: 'fwd-state', text: FORWARDER_TEXT[state] || state });
    const lead =
      state === 'disabled'
        ? el('p', { class: 'lead' }, badge, ' Forwarding to AWS IoT Core is off (no mqtt_endpoint configured). Everything is still stored here.')
        : el('p', { class: 'lead' }, badge, f.endpoint ? ` ${f.endpoint}` : '');
    const dl = el(
      'dl',
      { class: 'facts' },
      fact('Queue depth', formatCount(f.queue_depth ?? 0), { 'data-fact': 'queue_depth' }),
      fact('Dead letters', formatCount(f.dead ?? 0), { 'data-fact': 'dead' }),
      fact('Dropped', formatCount(f.dropped ?? 0), { 'data-fact': 'dropped' }),
      state !== 'disabled' ? fact('In flight', f.in_flight) : [],
      state !== 'disabled' && f.oldest_pending_age_ms ? fact('Oldest waiting', formatDuration(f.oldest_pending_age_ms / 1000)) : [],
      state !== 'disabled' ? fact('Sent / acked', `${formatCount(f.sent ?? 0)} / ${formatCount(f.acked ?? 0)}`) : [],
      f.rejected ? fact('Rejected', formatCount(f.rejected)) : [],
      f.reconnects ? fact('Reconnects', formatCount(f.reconnects)) : [],
      state === 'connected' && f.connected_since ? fact('Connected since', formatTime(f.connected_since)) : [],
      f.client_id ? fact('Client id', el('code', { text: f.client_id })) : [],
      f.images_shrunk || f.images_omitted
        ? fact('Images shrunk / left out', `${formatCount(f.images_shrunk ?? 0)} / ${formatCount(f.images_omitted ?? 0)}`)
        : [],
      f.last_error ? fact('Last error', f.last_error, { class: 'error-text' }) : [],
    );
    box.replaceChildren(lead, dl);
  }

  renderLive() {
    const c = this.opts.client();
    const box = this.els.live;
    if (!c) {
      box.replaceChildren();
      return;
    }
    const s = liveStateText(c.state);
    box.replaceChildren(
      el('p', { class: 'lead' }, el('span', { class: 'badge', 'data-state': s.key, text: s.short }), ` ${s.long}`),
      el(
        'dl',
        { class: 'facts' },
        fact('Endpoint', c.url ? el('code', { text: c.url }) : null),
        fact('Connected', c.state.name === 'live' && c.connectedSince ? formatAgo(c.connectedSince) : null),
        fact('Role', c.role),
        fact('Last seq', c.lastSeq),
        fact('Received', formatCount(c.counters.inferences)),
        fact('Missed', c.counters.missed ? formatCount(c.counters.missed) : null),
        fact('Connections', c.counters.connects ? formatCount(c.counters.connects) : null),
      ),
    );
  }

  renderStore() {
    const h = this.health;
    const box = this.els.store;
    if (!h) {
      box.replaceChildren(el('p', { class: 'muted', text: 'Service status unavailable.' }));
      return;
    }
    const db = h.db || {};
    box.replaceChildren(
      el(
        'dl',
        { class: 'facts' },
        fact('Database size', formatBytes(db.bytes), { 'data-fact': 'db_bytes' }),
        fact('Inferences', formatCount(db.rows)),
        fact('Images', formatCount(db.images)),
        fact('Outbox', formatCount(h.queue_depth ?? 0)),
        fact('Ingest queue', formatCount(h.ingest_queue ?? 0)),
        fact('Path', db.path ? el('code', { text: db.path }) : null),
        fact('Version', h.version),
        fact('Uptime', formatDuration(h.uptime_s)),
      ),
    );
  }

  renderModel() {
    const box = this.els.model;
    let model = this.model;
    let from = 'live stream';
    if (!model && this.sources) {
      const s = this.sources.find((x) => x.model);
      if (s) {
        model = s.model;
        from = `source ${s.name}`;
      }
    }
    if (!model) {
      box.replaceChildren(
        el('p', { class: 'muted', text: 'No model info yet. It comes from a runner-ws source once the runner says hello, or from a serial device once it answers AT+CONFIG?.' }),
      );
      return;
    }
    const p = model.project || {};
    const mp = model.modelParameters || {};
    const labels = Array.isArray(mp.labels) ? mp.labels : [];
    box.replaceChildren(
      el(
        'dl',
        { class: 'facts' },
        fact('Project', p.name ? `${p.name}${p.owner ? ` (${p.owner})` : ''}` : null),
        fact('Project id', p.id),
        fact('Deploy version', p.deploy_version),
        fact('Impulse', p.impulse_name),
        fact('Model type', model.model_type || mp.model_type),
        fact('Input', mp.image_input_width ? `${mp.image_input_width}×${mp.image_input_height}${mp.image_channel_count ? ` × ${mp.image_channel_count}` : ''}` : null),
        fact('Sensor', mp.sensorType || model.sensor),
        fact('Device', model.device_type ? `${model.device_type}${model.device_id ? ` (${model.device_id})` : ''}` : null),
        fact('AT version', model.at_version),
        fact('Resize mode', mp.image_resize_mode),
        fact('From', from),
      ),
      labels.length
        ? el('ul', { class: 'chips', 'aria-label': 'Model labels' }, labels.slice(0, 100).map((l) => el('li', { text: l })))
        : '',
    );
  }

  renderSources() {
    const box = this.els.sources;
    const list = this.sources;
    if (!list) {
      box.replaceChildren(el('p', { class: 'muted', text: 'Sources unavailable.' }));
      return;
    }
    if (list.length === 0) {
      box.replaceChildren(
        el('p', { class: 'muted', text: 'No sources configured: inferences arrive through POST /api/v1/inferences.' }),
      );
      return;
    }
    box.replaceChildren(
      el(
        'div',
        { class: 'table-scroll' },
        el(
          'table',
          { class: 'scores sources' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ['Name', 'Kind', 'State', 'Inferences', 'Reconnects', 'Last error'].map((t) => el('th', { scope: 'col', text: t })),
            ),
          ),
          el(
            'tbody',
            {},
            list.map((s) =>
              el(
                'tr',
                {},
                el('th', { scope: 'row', text: s.name }),
                el('td', { text: s.kind }),
                el('td', {}, el('span', { class: 'badge', 'data-state': s.state, text: s.state })),
                el('td', { text: formatCount(s.inferences ?? 0) }),
                el('td', { text: formatCount(s.reconnects ?? 0) }),
                el('td', { class: 'error-text', text: s.last_error || '' }),
              ),
            ),
          ),
        ),
      ),
    );
  }
}

export function liveStateText(state) {
  const name = state ? state.name : 'offline';
  switch (name) {
    case 'live':
      return { key: 'live', short: 'live', long: 'connected: inferences arrive as they are stored' };
    case 'connecting':
      return { key: 'connecting', short: 'connecting', long: 'connecting to the relay…' };
    case 'reconnecting': {
      if (state.connecting || !state.retryAt) {
        return { key: 'reconnecting', short: 'reconnecting', long: 'reconnecting…' };
      }
      const s = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      return {
        key: 'reconnecting',
        short: 'reconnecting',
        long: `disconnected (${state.reason || 'connection lost'}); retrying in ${s} s`,
      };
    }
    case 'polling':
      return { key: 'polling', short: 'polling', long: 'this relay has no live stream; checking for new inferences every 2 s' };
    case 'unauthorized':
      return { key: 'offline', short: 'refused', long: 'the token was refused' };
    default:
      return { key: 'offline', short: 'offline', long: 'not connected' };
  }
}
