// app.js - entry point of the ei-relay LAN dashboard (no build step, no third-party code).
// It owns the session (the API token in sessionStorage), switches between the login form and
// the signed-in views, keeps the health status line, and wires the filter bar to the feed.
// Views live in their own modules (feed.js, detail.js) so later ones (live WebSocket, charts)
// can be added the same way.

import { Api, ApiError } from './api.js';
import { Detail } from './detail.js';
import { Feed } from './feed.js';
import { el, formatBytes, formatDuration } from './util.js';

const TOKEN_KEY = 'ei-relay.token';
const HEALTH_MS = 5000;

const $ = (id) => document.getElementById(id);

const ui = {
  login: $('login'),
  loginForm: $('login-form'),
  token: $('token'),
  loginError: $('login-error'),
  loginBtn: $('login-submit'),
  main: $('main'),
  logout: $('logout'),
  status: $('status'),
  conn: $('conn'),
  error: $('feed-error'),
  filter: $('filter'),
  filterLabel: $('filter-label'),
  filterScore: $('filter-score'),
  filterSource: $('filter-source'),
  filterReset: $('filter-reset'),
};

const detail = new Detail($('detail'));
const feed = new Feed(null, {
  list: $('cards'),
  more: $('more'),
  empty: $('empty'),
  onOpen: (item) => detail.open(feed.api, item),
  onOk: () => showFeedError(null),
  onError: (e) => handleError(e),
});

let healthTimer = null;

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

// Convenience for kiosks and screenshots: #token=... signs in, and the fragment is removed
// at once so the token does not stay in the address bar or the history.
function takeTokenFromFragment() {
  if (!window.location.hash.startsWith('#')) return;
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get('token');
  if (!token) return;
  storeToken(token);
  history.replaceState(null, '', window.location.pathname + window.location.search);
}

function showLogin(message) {
  stopSession();
  storeToken(null);
  ui.main.hidden = true;
  ui.logout.hidden = true;
  ui.login.hidden = false;
  ui.loginError.textContent = message || '';
  ui.loginError.hidden = !message;
  ui.token.value = '';
  ui.token.focus();
}

function startSession(token) {
  const api = new Api(token);
  feed.api = api;
  ui.login.hidden = true;
  ui.main.hidden = false;
  ui.logout.hidden = false;
  showFeedError(null);
  feed.start();
}

function stopSession() {
  feed.stop();
  feed.clear();
  feed.api = null;
  detail.close();
}

// Checks a typed token with a one-row read before switching views, so a wrong token gets its
// message on the login form instead of a flash of an empty dashboard.
async function login(token) {
  ui.loginBtn.disabled = true;
  ui.loginError.hidden = true;
  try {
    await new Api(token).inferences({ limit: 1 });
    storeToken(token);
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
    if (e.status === 401) return 'This token was not accepted. Check it and try again.';
    if (e.status === 403) {
      return 'This token may not read inferences (it is an ingest-only token). Use a read or admin token.';
    }
    return e.message;
  }
  return `Sign-in failed: ${e.message}`;
}

// ---- errors and status --------------------------------------------------------------------

function handleError(e) {
  if (e instanceof ApiError && e.status === 401) {
    showLogin('The service did not accept this token (401). Sign in with a valid token.');
    return;
  }
  if (e instanceof ApiError && e.status === 403) {
    showLogin('This token may not read inferences. Sign in with a read or admin token.');
    return;
  }
  if (e instanceof ApiError && e.status === 0) {
    setConnection(false);
    showFeedError('Connection to ei-relay lost; retrying every 2 s.');
    return;
  }
  showFeedError(e.message || String(e));
}

function showFeedError(message) {
  ui.error.textContent = message || '';
  ui.error.hidden = !message;
  if (!message) setConnection(true);
}

function setConnection(ok) {
  ui.conn.textContent = ok ? 'online' : 'offline';
  ui.conn.className = ok ? 'conn ok' : 'conn down';
}

// The health endpoint needs no token, so the status line works on the login screen too.
async function refreshHealth() {
  clearTimeout(healthTimer);
  try {
    const h = await new Api(null).health();
    const db = h.db || {};
    const parts = [
      `ei-relay ${h.version ?? '?'}`,
      h.device ? `device ${h.device}` : null,
      `${db.rows ?? '?'} inferences`,
      `db ${formatBytes(db.bytes)}`,
      `up ${formatDuration(h.uptime_s)}`,
    ];
    if (typeof h.queue_depth === 'number' && h.queue_depth > 0) {
      parts.push(`outbox ${h.queue_depth}`);
    }
    // One span per fact, so a narrow screen wraps between facts rather than inside them.
    ui.status.replaceChildren(
      ...parts.filter(Boolean).map((text) => el('span', { class: 'fact', text })),
    );
    ui.status.title = db.path ? `database ${db.path}` : '';
    setConnection(h.status === 'ok');
  } catch (e) {
    ui.status.textContent = 'Service status unavailable.';
    setConnection(false);
  }
  healthTimer = setTimeout(refreshHealth, HEALTH_MS);
}

// ---- filter bar ---------------------------------------------------------------------------

function readFilter() {
  return {
    label: ui.filterLabel.value.trim(),
    minScore: ui.filterScore.value.trim(),
    source: ui.filterSource.value.trim(),
  };
}

ui.filter.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (!ui.filter.reportValidity()) return;
  feed.setFilter(readFilter());
});

ui.filterReset.addEventListener('click', () => {
  ui.filter.reset();
  feed.setFilter(readFilter());
});

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

ui.logout.addEventListener('click', () => showLogin('Signed out.'));

// A tab that becomes visible polls at once instead of waiting for its next tick.
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && feed.running) {
    feed.stop();
    feed.start();
  }
});

takeTokenFromFragment();
refreshHealth();
const token = storedToken();
if (token) startSession(token);
else showLogin(null);
