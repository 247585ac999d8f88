// charts.js - the Charts view: inferences per label over time (stacked bars, by top class) and
// the mean confidence per label (lines, over the label's occurrences), from GET /api/v1/stats,
// drawn as inline SVG sized to the screen. The legend toggles labels; the same numbers are
// available as a table. While the view is shown it refreshes on the live `stats` messages
// (every 10 s) or every 30 s.

import { colorFor, debounce, el, formatAnomaly, formatCount, formatScore, svg } from './util.js';

const RANGES = {
  '1h': { span: 3600e3, bucket: 120e3, bucketText: '2 min' },
  '6h': { span: 6 * 3600e3, bucket: 600e3, bucketText: '10 min' },
  '24h': { span: 24 * 3600e3, bucket: 3600e3, bucketText: '1 h' },
  '7d': { span: 7 * 24 * 3600e3, bucket: 6 * 3600e3, bucketText: '6 h' },
};
const HEIGHT = 220;
const M = { left: 44, right: 12, top: 12, bottom: 30 };
const REFRESH_MS = 30000;

export class Charts {
  // els: { range, legend, count, score, table, error, tz (optional: where the time zone is said) }
  constructor(els) {
    this.els = els;
    this.api = null;
    this.data = null;
    this.hiddenLabels = new Set();
    this.visible = false;
    this.loadedAt = 0;
    this.timer = null;
    this.generation = 0;
    els.range.addEventListener('change', () => this.load());
    if (els.tz) els.tz.textContent = `Times in browser time: ${zoneText()}`;
    const redraw = debounce(() => this.render(), 120);
    if ('ResizeObserver' in window) new ResizeObserver(redraw).observe(els.count);
    else window.addEventListener('resize', redraw);
  }

  start(api) {
    this.api = api;
    this.data = null;
  }

  stop() {
    this.api = null;
    this.generation++;
    clearTimeout(this.timer);
    this.data = null;
    this.els.count.replaceChildren();
    this.els.score.replaceChildren();
    this.els.legend.replaceChildren();
    this.els.table.replaceChildren();
  }

  shown(visible) {
    this.visible = visible;
    clearTimeout(this.timer);
    if (visible && this.api) this.load();
  }

  // A live `stats` message: time to refresh if the view is on screen.
  onStats() {
    if (this.visible && this.api && Date.now() - this.loadedAt > 9000) this.load();
  }

  async load() {
    if (!this.api) return;
    const gen = ++this.generation;
    clearTimeout(this.timer);
    const range = RANGES[this.els.range.value] || RANGES['24h'];
    const until = Math.ceil(Date.now() / range.bucket) * range.bucket;
    const since = until - range.span;
    try {
      const stats = await this.api.stats({ since, until, bucket: range.bucket });
      if (gen !== this.generation) return;
      this.data = { stats, range, since, until };
      this.loadedAt = Date.now();
      this.els.error.hidden = true;
      this.render();
    } catch (e) {
      if (gen !== this.generation) return;
      // An old range's chart must not stand under the error as if it were this one.
      this.data = null;
      for (const k of ['count', 'score', 'legend', 'table']) this.els[k].replaceChildren();
      if (e.status !== 401) {
        this.els.error.textContent = `Statistics unavailable: ${e.message}`;
        this.els.error.hidden = false;
      }
    }
    if (this.visible && gen === this.generation) this.timer = setTimeout(() => this.load(), REFRESH_MS);
  }

  // Series per label per bucket index: counts by top class (`top_labels`: how many inferences
  // had the label as their best class), and the mean score and count of its occurrences
  // (`label_occurrences`: every inference with the label, at any score) for the confidence line.
  series() {
    const { stats, range, since, until } = this.data;
    const n = Math.max(1, Math.round((until - since) / range.bucket));
    const index = (p) => {
      const i = Math.floor((p.t - since) / range.bucket);
      return i >= 0 && i < n ? i : -1;
    };
    const top = stats.top_labels || {};
    const occ = stats.label_occurrences || {};
    const out = [];
    for (const label of new Set([...Object.keys(top), ...Object.keys(occ)])) {
      const counts = new Array(n).fill(0);
      const occurrences = new Array(n).fill(0);
      const means = new Array(n).fill(null);
      let total = 0;
      let seen = 0;
      let weighted = 0;
      for (const p of top[label] || []) {
        const i = index(p);
        if (i < 0) continue;
        counts[i] += p.count;
        total += p.count;
      }
      for (const p of occ[label] || []) {
        const i = index(p);
        if (i < 0) continue;
        occurrences[i] += p.count;
        means[i] = p.mean_score;
        seen += p.count;
        weighted += p.count * (p.mean_score ?? 0);
      }
      // Visual-anomaly cells (label "anomaly") carry raw scores, often > 1: never a confidence.
      const raw = label === 'anomaly' || means.some((m) => typeof m === 'number' && m > 1);
      out.push({ label, counts, occurrences, means, total, raw, mean: seen ? weighted / seen : null });
    }
    out.sort((a, b) => b.total - a.total || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
    return { n, series: out };
  }

  render() {
    if (!this.data) return;
    const { n, series } = this.series();
    this.renderLegend(series);
    const shown = series.filter((s) => !this.hiddenLabels.has(s.label));
    const width = Math.max(280, Math.floor(this.els.count.clientWidth || 600));
    if (series.length === 0) {
      const empty = () => el('p', { class: 'empty', text: 'No inferences in this range.' });
      this.els.count.replaceChildren(empty());
      this.els.score.replaceChildren(empty());
      this.els.table.replaceChildren(el('p', { class: 'muted', text: 'No data.' }));
      return;
    }
    this.els.count.replaceChildren(this.countChart(shown, n, width));
    this.els.score.replaceChildren(this.scoreChart(shown.filter((s) => !s.raw), n, width));
    this.els.table.replaceChildren(this.table(series, n));
    // Tick labels can be measured only once they are in the page.
    for (const root of [this.els.count, this.els.score]) {
      const chart = root.querySelector('svg');
      if (chart) declutterTicks(chart, width);
    }
  }

  renderLegend(series) {
    const items = series.map((s) => {
      const on = !this.hiddenLabels.has(s.label);
      return el(
        'button',
        {
          type: 'button',
          class: 'legend-item',
          'aria-pressed': String(on),
          title: on ? `Hide ${s.label}` : `Show ${s.label}`,
          onclick: () => {
            if (this.hiddenLabels.has(s.label)) this.hiddenLabels.delete(s.label);
            else this.hiddenLabels.add(s.label);
            this.render();
            const again = [...this.els.legend.children].find((b) => b.dataset.label === s.label);
            if (again) again.focus();
          },
          'data-label': s.label,
        },
        el('span', { class: 'swatch', style: { background: colorFor(s.label) } }),
        el('span', { text: s.label }),
        el('span', { class: 'legend-n', text: `${formatCount(s.total)} · ${meanText(s, s.mean)}` }),
      );
    });
    this.els.legend.replaceChildren(...items);
  }

  x(i, n, width) {
    return M.left + ((width - M.left - M.right) * i) / n;
  }

  axes(root, n, width, yMax, yFormat, yTicks) {
    const { since, range } = this.data;
    const plotH = HEIGHT - M.top - M.bottom;
    const y = (v) => M.top + plotH - (v / yMax) * plotH;
    for (const v of yTicks) {
      root.append(
        svg('line', { class: 'grid', x1: M.left, x2: width - M.right, y1: y(v), y2: y(v) }),
        svg('text', { class: 'tick', x: M.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, yFormat(v)),
      );
    }
    const until = since + n * range.bucket;
    const xAt = (t) => M.left + ((width - M.left - M.right) * (t - since)) / (until - since);
    for (const t of xTicks(since, until, range, width)) {
      const xx = xAt(t);
      root.append(
        svg('line', { class: 'axis', x1: xx, x2: xx, y1: HEIGHT - M.bottom, y2: HEIGHT - M.bottom + 4 }),
        svg(
          'text',
          { class: 'tick tick-x', x: xx, y: HEIGHT - M.bottom + 17, 'text-anchor': 'middle', 'data-t': t },
          tickText(t, range),
        ),
      );
    }
    root.append(svg('line', { class: 'axis', x1: M.left, x2: width - M.right, y1: HEIGHT - M.bottom, y2: HEIGHT - M.bottom }));
    return y;
  }

  countChart(series, n, width) {
    const totals = new Array(n).fill(0);
    for (const s of series) s.counts.forEach((c, i) => (totals[i] += c));
    const { max, ticks } = niceScale(Math.max(1, ...totals));
    const all = series.reduce((a, s) => a + s.total, 0);
    const root = svg('svg', {
      class: 'chart-svg',
      viewBox: `0 0 ${width} ${HEIGHT}`,
      width,
      height: HEIGHT,
      role: 'img',
      'aria-label': `Stacked bars: ${formatCount(all)} inferences by top class in ${n} buckets of ${this.data.range.bucketText}; ${series
        .slice(0, 5)
        .map((s) => `${s.label} ${s.total}`)
        .join(', ')}`,
    });
    const y = this.axes(root, n, width, max, (v) => formatCount(v), ticks);
    const bw = (width - M.left - M.right) / n;
    const gap = bw > 6 ? Math.min(3, bw * 0.15) : 0;
    const bars = svg('g', { class: 'bars' });
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (const s of series) {
        const c = s.counts[i];
        if (!c) continue;
        const y0 = y(acc);
        const y1 = y(acc + c);
        acc += c;
        bars.append(
          svg(
            'rect',
            {
              x: this.x(i, n, width) + gap / 2,
              y: y1,
              width: Math.max(0.5, bw - gap),
              height: Math.max(0.5, y0 - y1),
              fill: colorFor(s.label),
              'data-label': s.label,
            },
            svg('title', {}, `${s.label}: ${c} at ${tickText(this.data.since + i * this.data.range.bucket, this.data.range, true)}`),
          ),
        );
      }
    }
    root.append(bars);
    return root;
  }

  scoreChart(series, n, width) {
    if (series.length === 0) return el('p', { class: 'empty', text: 'No confidence scores in this range (anomaly scores are not confidences).' });
    const root = svg('svg', {
      class: 'chart-svg',
      viewBox: `0 0 ${width} ${HEIGHT}`,
      width,
      height: HEIGHT,
      role: 'img',
      'aria-label': `Mean confidence per label: ${series
        .slice(0, 5)
        .map((s) => `${s.label} ${formatScore(s.mean)}`)
        .join(', ')}`,
    });
    const y = this.axes(root, n, width, 1, (v) => `${Math.round(v * 100)}%`, [0, 0.25, 0.5, 0.75, 1]);
    const bw = (width - M.left - M.right) / n;
    for (const s of series) {
      const color = colorFor(s.label);
      const g = svg('g', { class: 'line', 'data-label': s.label });
      let path = '';
      let prev = -2;
      s.means.forEach((m, i) => {
        if (m === null) return;
        const px = this.x(i, n, width) + bw / 2;
        const py = y(Math.max(0, Math.min(1, m)));
        path += `${i === prev + 1 ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`;
        prev = i;
        g.append(
          svg(
            'circle',
            { cx: px, cy: py, r: 3, fill: color },
            svg('title', {}, `${s.label}: ${formatScore(m)} mean of ${s.occurrences[i]} at ${tickText(this.data.since + i * this.data.range.bucket, this.data.range, true)}`),
          ),
        );
      });
      if (path) g.prepend(svg('path', { d: path, stroke: color, fill: 'none', 'stroke-width': 2 }));
      root.append(g);
    }
    return root;
  }

  table(series, n) {
    const { since, range } = this.data;
    const rows = [];
    for (let i = n - 1; i >= 0; i--) {
      for (const s of series) {
        if (!s.counts[i] && !s.occurrences[i]) continue;
        rows.push(
          el(
            'tr',
            {},
            el('td', { text: tickText(since + i * range.bucket, range, true) }),
            el('td', { text: s.label }),
            el('td', { text: formatCount(s.counts[i]) }),
            el('td', { text: meanText(s, s.means[i]) }),
          ),
        );
      }
    }
    return el(
      'table',
      { class: 'scores' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col', text: `Bucket (${range.bucketText}) start` }),
          el('th', { scope: 'col', text: 'Label' }),
          el('th', { scope: 'col', text: 'Count (top class)' }),
          el('th', { scope: 'col', text: 'Mean score' }),
        ),
      ),
      el('tbody', {}, rows),
    );
  }
}

// 0..max in 3-5 round steps.
function niceScale(maxValue) {
  const raw = maxValue / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw) || raw;
  const stepInt = Math.max(1, Math.ceil(step));
  const max = Math.ceil(maxValue / stepInt) * stepInt;
  const ticks = [];
  for (let v = 0; v <= max; v += stepInt) ticks.push(v);
  return { max, ticks };
}

// A series' mean: a confidence as a percentage, an anomaly score as it is.
function meanText(s, v) {
  return s.raw ? formatAnomaly(v) : formatScore(v);
}

// Tick times of the x axis. Ranges over a day tick at local midnights (the dates), shorter
// ones at bucket starts; as many as fit at ~72 px apart. declutterTicks drops any that still
// overlap once measured.
function xTicks(since, until, range, width) {
  const fit = Math.max(2, Math.floor((width - M.left - M.right) / 72));
  let ticks = [];
  if (range.span > 24 * 3600e3) {
    const d = new Date(since);
    d.setHours(0, 0, 0, 0);
    if (d.getTime() < since) d.setDate(d.getDate() + 1);
    for (; d.getTime() <= until; d.setDate(d.getDate() + 1)) ticks.push(d.getTime());
  } else {
    for (let t = since; t <= until; t += range.bucket) ticks.push(t);
  }
  const every = Math.max(1, Math.ceil(ticks.length / fit));
  return ticks.filter((_, i) => i % every === 0);
}

// Once drawn: x tick labels kept inside the chart (an end label ends at the edge) and never
// overlapping. The first and last stay; one that would touch its kept neighbour is removed.
function declutterTicks(root, width) {
  const labels = [...root.querySelectorAll('text.tick-x')];
  const box = (t) => {
    const b = t.getBBox();
    return { l: b.x, r: b.x + b.width };
  };
  for (const t of labels) {
    let b = box(t);
    if (b.l < 0) t.setAttribute('text-anchor', 'start');
    else if (b.r > width) t.setAttribute('text-anchor', 'end');
  }
  if (labels.length < 2) return;
  const gap = 6;
  const last = box(labels[labels.length - 1]);
  let prev = box(labels[0]);
  for (let i = 1; i < labels.length - 1; i++) {
    const b = box(labels[i]);
    if (b.l < prev.r + gap || b.r > last.l - gap) labels[i].remove();
    else prev = b;
  }
  if (last.l < prev.r + gap && labels.length > 1) labels[0].remove();
}

// The browser's time zone, named and as an offset: "Asia/Kolkata, UTC+05:30".
function zoneText() {
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  const off = -new Date().getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  return `${name}, UTC${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

function tickText(t, range, full = false) {
  const d = new Date(t);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const day = d.toLocaleDateString([], { weekday: 'short', day: 'numeric', month: 'short' });
  if (full) return `${day} ${hm}`;
  return range.span > 24 * 3600e3 ? day : hm;
}
