// util.js - small DOM and formatting helpers shared by the dashboard's views. Everything that
// shows data from the service goes through textContent (never innerHTML), so a label or a
// device name cannot inject markup.

// el('div', {class: 'x', 'aria-label': 'y'}, child, 'text', ...) -> HTMLElement
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// The same for SVG elements (charts).
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'text') node.textContent = value;
    else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
}

export function formatScore(score) {
  if (typeof score !== 'number' || !Number.isFinite(score)) return '—';
  return `${(score * 100).toFixed(score >= 0.995 || score < 0.1 ? 1 : 0)} %`;
}

// Anomaly scores are raw model outputs (K-means distance, visual-anomaly cell scores), not
// probabilities: two decimals, never a percentage.
export function formatAnomaly(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  return n.toFixed(2);
}

// Kinds whose top score is an anomaly score (a grid cell's value), not a confidence.
export function isAnomalyKind(item) {
  return Boolean(item) && (item.kind === 'visual-anomaly' || item.kind === 'anomaly');
}

// The K-means anomaly score an inference carries besides its classification, for the card;
// null when the headline already is that score (or there is none).
export function extraAnomaly(item) {
  if (!item || isAnomalyKind(item) || typeof item.anomaly !== 'number') return null;
  return formatAnomaly(item.anomaly);
}

export function formatNumber(n, digits = 3) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  return Number(n.toFixed(digits)).toString();
}

export function formatCount(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  return n.toLocaleString();
}

// Time of day for today's inferences, date and time otherwise.
export function formatTime(ms) {
  if (typeof ms !== 'number') return '—';
  const d = new Date(ms);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

export function isoTime(ms) {
  return typeof ms === 'number' ? new Date(ms).toISOString() : '';
}

// "12 s ago", "3 min ago", ... for status facts.
export function formatAgo(ms, now = Date.now()) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleString();
}

export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function formatDuration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '—';
  s = Math.floor(s);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

// Headline of an inference: its top label and score, or what stands in for them.
export function headline(item) {
  if (item.top_label) {
    const raw = isAnomalyKind(item);
    return { label: item.top_label, score: raw ? formatAnomaly(item.top_score) : formatScore(item.top_score), raw };
  }
  if (item.kind === 'anomaly' && typeof item.anomaly === 'number') {
    return { label: 'anomaly', score: formatAnomaly(item.anomaly), raw: true };
  }
  if (item.kind === 'empty') return { label: 'no objects', score: '' };
  if (item.kind === 'freeform') return { label: 'freeform', score: '' };
  return { label: '—', score: '' };
}

// A short phrase for what an inference holds: "3 objects", "classification", ...
export function kindText(item) {
  const r = item.result || {};
  if (Array.isArray(r.bounding_boxes)) {
    const n = r.bounding_boxes.length;
    return n === 0 ? 'no objects' : `${n} object${n === 1 ? '' : 's'}`;
  }
  if (Array.isArray(r.visual_anomaly_grid)) return 'anomaly grid';
  if (item.kind) return String(item.kind).replace('-', ' ');
  return '';
}

// Every label an inference carries, with its best score: classification keys, boxes, cells.
export function labelScores(item) {
  const out = new Map();
  const r = item && item.result;
  if (!r || typeof r !== 'object') return out;
  const put = (label, value) => {
    if (typeof label !== 'string') return;
    const v = typeof value === 'number' ? value : null;
    const old = out.get(label);
    if (old === undefined || (v !== null && (old === null || v > old))) out.set(label, v);
  };
  if (r.classification && typeof r.classification === 'object') {
    for (const [label, value] of Object.entries(r.classification)) put(label, value);
  }
  for (const list of [r.bounding_boxes, r.visual_anomaly_grid]) {
    if (Array.isArray(list)) for (const b of list) if (b) put(b.label, b.value);
  }
  return out;
}

// Stable colours per label: a hash of the label's text picks the hue, so a label has the same
// colour in every view and every page load, whatever order labels arrive in. Saturation and
// lightness are fixed (readable as box outlines on photos and as swatches in both themes).
export function hashLabel(label) {
  let h = 0x811c9dc5; // FNV-1a, 32 bit
  const s = String(label);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
const labelColors = new Map();
export function colorFor(label) {
  let c = labelColors.get(label);
  if (!c) {
    // 40 hues 9 degrees apart; two lightness steps so neighbouring hues still differ.
    const h = hashLabel(label);
    c = `hsl(${(h % 40) * 9} 70% ${(h >>> 8) % 2 ? 48 : 58}%)`;
    labelColors.set(label, c);
  }
  return c;
}

// The epoch ms of an <input type="datetime-local"> value (local time); null when empty.
export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime(); // a value without zone is local time
  return Number.isFinite(ms) ? ms : null;
}

// The elements of a definition list: fact('Queue', 12) -> [dt, dd] (nothing for empty values).
export function fact(name, value, attrs = {}) {
  if (value === undefined || value === null || value === '') return [];
  return [
    el('dt', { text: name }),
    el('dd', attrs, value instanceof Node ? value : String(value)),
  ];
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
