// liveview.js - the Live view: the newest inference large (image, boxes, scores), the ones
// before it as a grid of cards, `missed` notices where the stream skipped, the rate, and the
// last hour's per-label counts. Arrivals are batched to one DOM update per animation frame, the
// grid keeps a bounded number of cards, and thumbnails load newest first, so a busy relay
// (hundreds of inferences a second) does not swamp the page. The last hour's counts come from
// the store (GET /api/v1/stats), refreshed at most every HOUR_GAP_MS.

import { CardList } from './cards.js';
import { createMedia, regionsOf } from './media.js';
import {
  colorFor,
  el,
  formatCount,
  formatScore,
  formatTime,
  headline,
  isoTime,
  kindText,
  labelScores,
} from './util.js';

const MAX_CARDS = 48;
const SEED = 12; // inferences shown from the cache when the view starts
// A card waits this long before fetching its thumbnail: at hundreds of inferences a second,
// cards pushed out at once never make the relay render a thumbnail.
const THUMB_DELAY_MS = 150;
// The large view changes at most this often (each change loads a full-size image).
const FEATURED_MIN_MS = 250;
// The "Last hour" box: its window, its refresh when nothing arrives, the least gap between two.
const HOUR_MS = 3600e3;
const HOUR_EVERY_MS = 10000;
const HOUR_GAP_MS = 2000;
// After an arrival the box asks a little later: the new card's image requests go first.
const HOUR_AFTER_ARRIVAL_MS = 500;

export class LiveView {
  // els: { list, empty, featured, pause, rate, hour }; opts: { loader, onOpen(item) }
  constructor(els, opts) {
    this.els = els;
    this.opts = opts;
    this.cards = new CardList(els.list, {
      loader: opts.loader,
      onOpen: opts.onOpen,
      front: true,
      max: MAX_CARDS,
      thumbDelay: THUMB_DELAY_MS,
    });
    this.pending = []; // arrivals not drawn yet, oldest first: {item} or {notice, kind}
    this.flushQueued = false;
    this.paused = false;
    this.heldBack = 0; // arrivals while paused
    this.arrivals = []; // receive times of the last minute, for the rate
    this.featured = new Featured(els.featured, opts);
    els.pause.addEventListener('click', () => this.setPaused(!this.paused));
    this.rateTimer = setInterval(() => this.renderRate(), 2000);
  }

  reset() {
    this.pending = [];
    this.heldBack = 0;
    this.cards.clear();
    this.featured.clear();
    this.renderEmpty();
    this.setPaused(false);
  }

  // The newest page from the cache, shown before live messages start (newest first).
  seed(items) {
    const fresh = items.filter((it) => !this.cards.has(it.id)).slice(0, SEED);
    this.cards.append(fresh);
    if (!this.featured.item && fresh.length) this.featured.show(fresh[0]);
    this.renderEmpty();
  }

  add(item) {
    this.arrivals.push(Date.now());
    this.refreshHour(false, HOUR_AFTER_ARRIVAL_MS);
    this.pending.push({ item });
    if (this.pending.length > MAX_CARDS * 2) this.pending.splice(0, this.pending.length - MAX_CARDS);
    if (this.paused) this.heldBack++;
    this.schedule();
  }

  missed(msg) {
    const n = Number(msg.count) || 0;
    const text =
      msg.reason === 'resume_limit'
        ? `${formatCount(n)} older inference${n === 1 ? ' was' : 's were'} not replayed after the reconnect (more than the relay resends). They are in History.`
        : `${formatCount(n)} inference${n === 1 ? ' was' : 's were'} skipped: this browser could not keep up. They are in History.`;
    this.pending.push({ notice: text, kind: 'warn' });
    this.schedule();
  }

  // A connection event worth a line in the stream (e.g. "reconnected").
  note(text) {
    this.pending.push({ notice: text, kind: 'info' });
    this.schedule();
  }

  remove(id) {
    this.cards.remove(id);
    if (this.featured.item && this.featured.item.id === id) this.featured.clear();
    this.renderEmpty();
  }

  setPaused(paused) {
    this.paused = paused;
    this.els.pause.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      this.heldBack = 0;
      this.schedule();
    }
    this.renderPause();
  }

  renderPause() {
    const p = this.els.pause;
    if (!this.paused) p.textContent = 'Pause';
    else p.textContent = this.heldBack > 0 ? `Resume (${formatCount(this.heldBack)} new)` : 'Resume';
  }

  schedule() {
    if (this.paused) {
      this.renderPause();
      return;
    }
    if (this.flushQueued) return;
    this.flushQueued = true;
    // Animation frames do not run in a hidden tab: a timer keeps the list current there.
    const run = () => {
      if (!this.flushQueued) return;
      this.flushQueued = false;
      this.flush();
    };
    if (document.hidden) setTimeout(run, 250);
    else {
      requestAnimationFrame(run);
      setTimeout(run, 250);
    }
  }

  flush() {
    if (this.paused || this.pending.length === 0) return;
    const batch = this.pending.slice(-MAX_CARDS);
    this.pending = [];
    const newestFirst = batch.reverse();
    this.cards.prepend(newestFirst.map((e) => (e.item ? e.item : { notice: e.notice, kind: e.kind })));
    const newest = newestFirst.find((e) => e.item);
    if (newest) this.featured.show(newest.item);
    this.renderEmpty();
  }

  renderEmpty() {
    this.els.empty.hidden = this.cards.size > 0 || this.pending.length > 0;
  }

  renderRate() {
    const cutoff = Date.now() - 60000;
    let i = 0;
    while (i < this.arrivals.length && this.arrivals[i] < cutoff) i++;
    if (i > 0) this.arrivals.splice(0, i);
    const n = this.arrivals.length;
    this.els.rate.textContent = n > 0 ? `${formatCount(n)} / min` : '';
  }

  // The "Last hour" box: counts by top class from the store (GET /api/v1/stats over the hour
  // before now, by inference time, with the Live filter), not counted here by arrival: right
  // after a relay restart or a reload, a backfill of old inferences is not "last hour", and the
  // numbers follow the filter. filter() gives the REST parameters of the Live filter.
  startHour(api, filter) {
    this.stopHour();
    this.hour = { api, filter, gen: 0, at: 0, gap: HOUR_GAP_MS, timer: null };
    this.hourTimer = setInterval(() => this.refreshHour(), HOUR_EVERY_MS);
    this.refreshHour(true);
  }

  stopHour() {
    clearInterval(this.hourTimer);
    if (this.hour) clearTimeout(this.hour.timer);
    this.hour = null;
  }

  // Asks the store again: now when forced (a new filter, a new connection), else at most every
  // h.gap (arrivals, the live `stats` tick), and not while the tab is hidden. The query reads
  // every row of the hour (~3 µs each): the gap is at least 10 times the last answer's time, so
  // a busy relay (700,000 rows an hour at 200/s) spends at most a tenth of a reader per page.
  refreshHour(force = false, delay = 0) {
    const h = this.hour;
    if (!h) return;
    const wait = force ? 0 : Math.max(delay, h.at + h.gap - Date.now());
    if (wait > 0) {
      if (!h.timer) h.timer = setTimeout(() => ((h.timer = null), this.refreshHour()), wait);
      return;
    }
    clearTimeout(h.timer);
    h.timer = null;
    if (!force && document.hidden) return;
    h.at = Date.now();
    const gen = ++h.gen;
    const until = Date.now();
    h.api
      .stats({ since: until - HOUR_MS, until, bucket: HOUR_MS, ...h.filter() })
      .then((doc) => {
        h.gap = Math.max(HOUR_GAP_MS, 10 * (Date.now() - until));
        if (this.hour === h && gen === h.gen) this.renderHour(doc);
      })
      .catch(() => {}); // the last numbers stay; the stream's state says the relay is away
  }

  // A GET /api/v1/stats answer: per label, the inferences it was the top class of.
  renderHour(stats) {
    const box = this.els.hour;
    const totals = (stats && stats.top_totals) || {};
    const labels = Object.entries(totals)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const n = Number(stats && stats.inferences) || 0;
    if (n === 0) {
      box.replaceChildren(el('p', { class: 'muted', text: 'No inferences in the last hour.' }));
      return;
    }
    const noTop = Number(stats.no_top) || 0;
    const total = el('p', {
      class: 'hour-total',
      text: `${formatCount(n)} inference${n === 1 ? '' : 's'} in the last hour${noTop ? `, ${formatCount(noTop)} without a class` : ''}`,
    });
    const max = Math.max(1, ...labels.map(([, c]) => c));
    const mean = (label) => {
      let sum = 0;
      let count = 0;
      for (const p of stats.top_labels?.[label] || []) {
        sum += p.count * p.mean_score;
        count += p.count;
      }
      return count ? sum / count : null;
    };
    box.replaceChildren(
      total,
      el(
        'table',
        { class: 'hour-table' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', { scope: 'col', text: 'Top class' }),
            el('th', { scope: 'col', text: 'Count' }),
            el('th', { scope: 'col', text: 'Mean score' }),
          ),
        ),
        el(
          'tbody',
          {},
          labels.slice(0, 8).map(([label, count]) => {
            const bar = el('span', { class: 'mini-bar', 'aria-hidden': 'true' }, el('span', {}));
            bar.firstChild.style.width = `${(count / max) * 100}%`;
            bar.firstChild.style.background = colorFor(label);
            return el(
              'tr',
              { 'data-label': label },
              el('th', { scope: 'row' }, el('span', { class: 'swatch', style: { background: colorFor(label) } }), label),
              el('td', {}, el('span', { class: 'count-cell' }, bar, el('span', { class: 'hour-count', text: formatCount(count) }))),
              el('td', { text: formatScore(mean(label)) }),
            );
          }),
        ),
      ),
    );
  }
}

// The newest inference, large. At most one full image loads at a time; a newer inference that
// arrives meanwhile is shown when that load ends, so a fast stream still updates smoothly.
class Featured {
  constructor(box, opts) {
    this.box = box;
    this.opts = opts;
    this.item = null;
    this.media = null;
    this.loading = null;
    this.next = null;
    this.clear();
  }

  clear() {
    if (this.media) this.media.release();
    if (this.loading) this.loading.release();
    this.media = this.loading = this.next = this.item = null;
    this.box.replaceChildren(el('p', { class: 'muted featured-empty', text: 'The newest inference will appear here.' }));
  }

  show(item) {
    if (this.loading) {
      this.next = item;
      return;
    }
    const media = createMedia(item, { variant: 'full', loader: this.opts.loader, front: true });
    this.loading = media;
    const started = Date.now();
    media.ready.then(() => {
      if (this.loading !== media) return; // cleared meanwhile
      if (this.media) this.media.release();
      this.media = media;
      this.item = item;
      this.render(item, media);
      // Hold the picture a moment before the next one (this.loading blocks show() until then).
      setTimeout(() => {
        if (this.loading !== media) return;
        this.loading = null;
        if (this.next) {
          const next = this.next;
          this.next = null;
          this.show(next);
        }
      }, Math.max(0, FEATURED_MIN_MS - (Date.now() - started)));
    });
  }

  render(item, media) {
    const head = headline(item);
    // Scores to list: each box (object detection), else each label (classification).
    const boxes = regionsOf(item.result).filter((r) => !r.cell);
    const scores = (boxes.length > 0 ? boxes.map((b) => [b.label ?? '', b.value]) : [...labelScores(item).entries()])
      .filter(([, v]) => typeof v === 'number')
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5);
    const open = el('button', {
      type: 'button',
      class: 'secondary small',
      text: 'Details',
      'aria-label': `Details of the newest inference, ${head.label}`,
      onclick: () => this.opts.onOpen(item),
    });
    this.box.replaceChildren(
      el('div', { class: 'featured-media', 'data-id': item.id }, media.root),
      el(
        'div',
        { class: 'featured-info' },
        el(
          'p',
          { class: 'featured-head' },
          el('span', { class: 'label', text: head.label }),
          head.score ? el('span', { class: 'score', text: head.score }) : null,
        ),
        el(
          'p',
          { class: 'meta' },
          el('time', { datetime: isoTime(item.ts), text: formatTime(item.ts) }),
          el('span', { text: kindText(item) }),
          el('span', { text: `source ${item.source}` }),
          el('span', { text: `#${item.seq}` }),
        ),
        scores.length > 1 || (boxes.length > 0 && scores.length > 0)
          ? el(
              'ul',
              { class: 'score-list', 'aria-label': 'Scores' },
              scores.map(([label, v]) => {
                const bar = el('span', { class: 'bar', 'aria-hidden': 'true' }, el('span', {}));
                bar.firstChild.style.width = `${Math.max(0, Math.min(1, v)) * 100}%`;
                bar.firstChild.style.background = colorFor(label);
                return el(
                  'li',
                  {},
                  el('span', { class: 'score-name', text: label }),
                  bar,
                  el('span', { class: 'score-value', text: formatScore(v) }),
                );
              }),
            )
          : null,
        open,
      ),
    );
  }
}
