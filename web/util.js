// util.js - small DOM and formatting helpers shared by the dashboard's views. Everything that
// shows data from the service goes through textContent (never innerHTML), so a label or a
// device name cannot inject markup.

// el('div', {class: 'x', 'aria-label': 'y'}, child, 'text', ...) -> HTMLElement
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function formatScore(score) {
  if (typeof score !== 'number' || !Number.isFinite(score)) return '—';
  return `${(score * 100).toFixed(score >= 0.995 || score < 0.1 ? 1 : 0)} %`;
}

export function formatNumber(n, digits = 3) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  return Number(n.toFixed(digits)).toString();
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
  if (item.top_label) return { label: item.top_label, score: formatScore(item.top_score) };
  if (item.kind === 'anomaly' && typeof item.anomaly === 'number') {
    return { label: 'anomaly', score: formatNumber(item.anomaly) };
  }
  if (item.kind === 'empty') return { label: 'no objects', score: '' };
  if (item.kind === 'freeform') return { label: 'freeform', score: '' };
  return { label: '—', score: '' };
}
