// app.js - entry point of the ei-relay LAN dashboard (no build step, no third-party code).
// It owns the session (the API token in sessionStorage, for this tab only), the sign-in form,
// the tabs (Live, History, Charts, Status; the URL fragment remembers the one shown), and the
// live stream client, whose messages it hands to the views.

import { Api, ApiError } from './api.js';
import { Charts } from './charts.js';
import { Detail } from './detail.js';
import { HistoryView } from './history.js';
import { LiveClient } from './live.js';
import { LiveView } from './liveview.js';
import { ImageLoader } from './media.js';
import { liveStateText, StatusView } from './status.js';
import { el, labelScores } from './util.js';

const TOKEN_KEY = 'ei-relay.token';
const TABS = ['live', 'history', 'charts', 'status'];
const SEED = 12;

const $ = (id) => document.getElementById(id);

const ui = {
  login: $('login'),
  loginForm: $('login-form'),
  token: $('token'),
  loginError: $('login-error'),
  loginNote: $('login-note'),
  loginBtn: $('login-submit'),
  loginHealth: $('login-health'),
  app: $('app'),
  logout: $('logout'),
  device: $('device'),
  announce: $('announce'),
  liveState: $('live-state'),
  liveFilter: $('live-filter'),
  knownLabels: $('known-labels'),
  knownSources: $('known-sources'),
  tablist: $('tablist'),
  banner: $('offline-banner'),
  bannerText: $('offline-text'),
  retry: $('offline-retry'),
};

const loader = new ImageLoader(4);
let api = null;
let client = null;
let currentTab = 'live';
let tick = null;
let lostAt = null; // when the live stream lost the relay (null while reachable)

const detail = new Detail($('detail'), {
  loader,
  canDelete: () => Boolean(client && client.role === 'admin'),
  onDeleted: (id) => {
    liveView.remove(id);
    historyView.remove(id);
    say('Inference deleted.');
  },
});

const openDetail = (item) => detail.open(api, item);

const liveView = new LiveView(
  {
    list: $('live-list'),
    empty: $('live-empty'),
    featured: $('featured'),
    pause: $('live-pause'),
    rate: $('live-rate'),
    hour: $('hour-stats'),
  },
  { loader, onOpen: openDetail },
);

const historyView = new HistoryView(
  {
    form: $('history-filter'),
    list: $('history-list'),
    more: $('history-more'),
    empty: $('history-empty'),
    error: $('history-error'),
    summary: $('history-summary'),
    newer: $('history-new'),
    refresh: $('history-refresh'),
    fields: {
      label: $('h-label'),
      score: $('h-score'),
      source: $('h-source'),
      since: $('h-since'),
      until: $('h-until'),
    },
  },
  { loader, onOpen: openDetail, onError: () => {} },
);

const charts = new Charts({
  range: $('chart-range'),
  legend: $('chart-legend'),
  count: $('chart-count'),
  score: $('chart-score'),
  table: $('chart-table'),
  error: $('charts-error'),
  tz: $('chart-tz'),
});

const statusView = new StatusView(
  {
    fwd: $('st-fwd-body'),
    live: $('st-live-body'),
    store: $('st-store-body'),
    model: $('st-model-body'),
    sources: $('st-src-body'),
    updated: $('status-updated'),
    pillLive: $('pill-live'),
    pillCloud: $('pill-cloud'),
    view: $('view-status'),
  },
  { client: () => client },
);

// ---- session ------------------------------------------------------------------------------

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the user signs in on every load
  }
}

function storeToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the session lasts as long as the page.
  }
}

// For kiosks: #token=... signs in, and the fragment is removed at once so the token does not
// stay in the address bar or the history.
function takeTokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get('token');
  if (!token) return;
  storeToken(token);
  const tab = params.get('view');
  history.replaceState(null, '', `${window.location.pathname}${window.location.search}${TABS.includes(tab) ? `#${tab}` : ''}`);
}

function showLogin(message, note) {
  stopSession();
  storeToken(null);
  ui.app.hidden = true;
  ui.logout.hidden = true;
  ui.login.hidden = false;
  ui.loginError.textContent = message || '';
  ui.loginError.hidden = !message;
  ui.loginNote.textContent = note || '';
  ui.loginNote.hidden = !note;
  ui.token.value = '';
  ui.token.focus();
  loginHealth();
}

async function loginHealth() {
  try {
    const h = await new Api(null).health();
    ui.loginHealth.textContent = `ei-relay ${h.version ?? ''}${h.device ? ` on ${h.device}` : ''}`;
  } catch {
    ui.loginHealth.textContent = 'The relay is not answering right now.';
  }
}

async function startSession(token) {
  api = new Api(token);
  api.onUnauthorized = () => showLogin('The relay no longer accepts this token. Sign in again.');
  loader.api = api;
  ui.login.hidden = true;
  ui.app.hidden = false;
  ui.logout.hidden = false;
  historyView.start(api);
  charts.start(api);
  statusView.start(api);
  liveView.reset();

  client = new LiveClient(api);
  wireClient(client, api);
  liveView.startHour(api, () => (client ? client.restFilter() : {}));
  showTab(tabFromHash() || currentTab, { focus: false });
  // The newest inferences from the cache first, then the stream resumes right after them.
  const mine = client;
  try {
    const page = await api.inferences({ limit: SEED });
    if (mine !== client) return;
    const items = page.items || [];
    learn(items);
    liveView.seed(items);
    client.lastSeq = items.length ? items[0].seq : 0;
  } catch (e) {
    if (mine !== client) return;
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      showLogin(loginMessage(e));
      return;
    }
  }
  client.start();
  clearInterval(tick);
  tick = setInterval(() => renderLiveState(), 1000);
}

function stopSession() {
  clearInterval(tick);
  tick = null;
  if (client) client.stop();
  client = null;
  liveView.stopHour();
  historyView.stop();
  charts.stop();
  statusView.stop();
  liveView.reset();
  detail.close();
  loader.api = null;
  api = null;
  ui.device.textContent = '';
  lostAt = null;
  ui.banner.hidden = true;
}

function wireClient(c, theApi) {
  let wasLive = false;
  c.addEventListener('state', (ev) => {
    if (c !== client) return;
    const name = ev.detail.name;
    if (name === 'live' && wasLive === 'lost') {
      say('Live stream reconnected.');
      // Stale figures are read again at once instead of at the views' next refresh.
      statusView.refresh();
      charts.shown(currentTab === 'charts');
      liveView.note(`Reconnected at ${new Date().toLocaleTimeString()}; missed inferences were replayed.`);
    }
    if (name === 'reconnecting' && wasLive === true) {
      say('Live stream disconnected; reconnecting.');
      wasLive = 'lost';
    }
    if (name === 'live') wasLive = true;
    renderLiveState();
  });
  c.addEventListener('hello', (ev) => {
    if (c !== client) return;
    if (ev.detail.device) ui.device.textContent = ev.detail.device;
    statusView.onHello(ev.detail);
    liveView.refreshHour(true); // (re)connected: the store may hold what came meanwhile
  });
  c.addEventListener('health', (ev) => {
    if (c !== client) return;
    if (ev.detail && ev.detail.device) ui.device.textContent = ev.detail.device;
    statusView.setHealth(ev.detail);
  });
  c.addEventListener('inference', (ev) => {
    if (c !== client) return;
    const item = ev.detail.inference;
    learn([item]);
    liveView.add(item);
    historyView.arrived(item);
    statusView.poke();
  });
  c.addEventListener('missed', (ev) => c === client && liveView.missed(ev.detail));
  // deleted elsewhere (another browser, a script): drop it here too
  c.addEventListener('deleted', (ev) => {
    if (c !== client || typeof ev.detail.id !== 'string') return;
    liveView.remove(ev.detail.id);
    historyView.remove(ev.detail.id);
  });
  c.addEventListener('subscribed', (ev) => c === client && showLiveFilter(ev.detail.filter || {}));
  c.addEventListener('forwarder', (ev) => c === client && statusView.onForwarder(ev.detail));
  c.addEventListener('stats', (ev) => {
    if (c !== client) return;
    liveView.refreshHour();
    learnLabels(Object.keys(ev.detail.labels || {}));
    charts.onStats();
  });
  c.addEventListener('unauthorized', () => {
    if (c !== client || api !== theApi) return;
    showLogin('The live stream did not accept this token. Sign in again.');
  });
  c.addEventListener('error', (ev) => {
    if (c !== client) return;
    say(`Live stream: ${ev.detail.message || ev.detail.code}`);
  });
}

function renderLiveState() {
  if (!client) return;
  const s = liveStateText(client.state);
  ui.liveState.dataset.state = s.key;
  ui.liveState.textContent = s.long.charAt(0).toUpperCase() + s.long.slice(1);
  statusView.renderPills();
  if (currentTab === 'status') statusView.renderLive();
  renderReachability();
}

// The banner on every view while the live stream has lost the relay, with "Retry now". Its
// text changes only when contact is lost again, so screen readers hear it once.
function renderReachability() {
  const lost = Boolean(client) && client.state.name === 'reconnecting';
  if (lost && lostAt === null) lostAt = client.state.since ?? Date.now();
  if (!lost) lostAt = null;
  statusView.setUnreachable(lostAt);
  if (lost) {
    const text = `The relay has been unreachable since ${new Date(lostAt).toLocaleTimeString()}. Figures on screen may be stale.`;
    if (ui.bannerText.textContent !== text) ui.bannerText.textContent = text;
  }
  if (!lost && ui.banner.contains(document.activeElement)) $('views').focus();
  ui.banner.hidden = !lost;
}

function retryNow() {
  if (!client) return;
  client.retryNow();
  statusView.refresh();
  if (currentTab === 'charts') charts.load();
}

// Announces a short message to screen readers.
function say(text) {
  ui.announce.textContent = '';
  setTimeout(() => (ui.announce.textContent = text), 50);
}

// Labels and sources seen, offered as suggestions in the filter fields.
const seenLabels = new Set();
const seenSources = new Set();
function learn(items) {
  const labels = [];
  for (const item of items) {
    for (const l of labelScores(item).keys()) labels.push(l);
    if (item.source && !seenSources.has(item.source) && seenSources.size < 200) {
      seenSources.add(item.source);
      ui.knownSources.append(el('option', { value: item.source }));
    }
  }
  learnLabels(labels);
}

function learnLabels(labels) {
  for (const l of labels) {
    if (seenLabels.has(l) || seenLabels.size >= 500) continue;
    seenLabels.add(l);
    ui.knownLabels.append(el('option', { value: l }));
  }
}

// Checks a typed token with a one-row read before switching views, so a wrong token gets its
// message on the sign-in form instead of a flash of an empty dashboard.
async function login(token) {
  ui.loginBtn.disabled = true;
  ui.loginError.hidden = true;
  ui.loginNote.hidden = true;
  try {
    await new Api(token).inferences({ limit: 1 });
    storeToken(token);
    ui.token.value = '';
    startSession(token);
  } catch (e) {
    ui.loginError.textContent = loginMessage(e);
    ui.loginError.hidden = false;
    ui.token.select();
  } finally {
    ui.loginBtn.disabled = false;
  }
}

function loginMessage(e) {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'This token was not accepted (401). Check it and try again.';
    if (e.status === 403) {
      return 'This token may not read inferences (it is an ingest-only token). Use a read or admin token.';
    }
    return e.message;
  }
  return `Sign-in failed: ${e.message}`;
}

// ---- tabs ---------------------------------------------------------------------------------

function tabFromHash() {
  const name = window.location.hash.slice(1);
  return TABS.includes(name) ? name : null;
}

function showTab(name, { focus = false } = {}) {
  currentTab = name;
  for (const t of TABS) {
    const tab = $(`tab-${t}`);
    const on = t === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`view-${t}`).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (window.location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  if (name === 'history') historyView.shown();
  charts.shown(name === 'charts');
  statusView.shown(name === 'status');
}

ui.tablist.addEventListener('click', (ev) => {
  const tab = ev.target.closest('[role="tab"]');
  if (tab) showTab(tab.id.slice(4));
});

ui.tablist.addEventListener('keydown', (ev) => {
  const i = TABS.indexOf(currentTab);
  let next = null;
  if (ev.key === 'ArrowRight') next = TABS[(i + 1) % TABS.length];
  else if (ev.key === 'ArrowLeft') next = TABS[(i + TABS.length - 1) % TABS.length];
  else if (ev.key === 'Home') next = TABS[0];
  else if (ev.key === 'End') next = TABS[TABS.length - 1];
  if (!next) return;
  ev.preventDefault();
  showTab(next, { focus: true });
});

window.addEventListener('hashchange', () => {
  const name = tabFromHash();
  if (name && name !== currentTab && api) showTab(name);
});

ui.retry.addEventListener('click', retryNow);
$('pill-live').addEventListener('click', () => showTab('status', { focus: true }));
$('pill-cloud').addEventListener('click', () => showTab('status', { focus: true }));

// ---- live filter --------------------------------------------------------------------------

function liveFilterValues() {
  const label = $('live-label').value.trim();
  const score = $('live-score').value.trim();
  const source = $('live-source').value.trim();
  return { label, score, source };
}

async function applyLiveFilter() {
  if (!client) return;
  const { label, score, source } = liveFilterValues();
  client.setFilter({ labels: label ? [label] : [], min_score: score, sources: source ? [source] : [] });
  // Over the WebSocket the summary waits for the server's `subscribed`; when polling, no wait.
  if (client.state.name !== 'live') showLiveFilter(client.filter);
  liveView.reset();
  liveView.refreshHour(true);
  const mine = client;
  try {
    const page = await api.inferences({ limit: SEED, label, min_score: score, source });
    if (mine === client) liveView.seed(page.items || []);
  } catch {
    // the stream still runs; the seed is a nicety
  }
}

function showLiveFilter(f) {
  const list = (v) => (Array.isArray(v) ? v.join(' or ') : '');
  const parts = [
    f.labels && f.labels.length && `label ${list(f.labels)}`,
    typeof f.min_score === 'number' && f.min_score > 0 && `score ≥ ${f.min_score}`,
    f.sources && f.sources.length && `source ${list(f.sources)}`,
  ].filter(Boolean);
  $('live-filter-summary').textContent = parts.length ? `(${parts.join(', ')})` : '(showing everything)';
}

ui.liveFilter.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (!ui.liveFilter.reportValidity()) return;
  applyLiveFilter();
});
ui.liveFilter.addEventListener('reset', () => setTimeout(applyLiveFilter, 0));

// ---- wiring -------------------------------------------------------------------------------

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = ui.token.value.trim();
  if (!token) {
    ui.loginError.textContent = 'Enter the API token.';
    ui.loginError.hidden = false;
    return;
  }
  login(token);
});

ui.logout.addEventListener('click', () => showLogin(null, 'Signed out. The token was forgotten.'));

// A tab that becomes visible reconnects at once instead of waiting for its backoff.
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && client) client.retryNow();
});

takeTokenFromFragment();
const initialTab = tabFromHash();
if (initialTab) currentTab = initialTab;
const token = storedToken();
if (token) startSession(token);
else showLogin(null);
