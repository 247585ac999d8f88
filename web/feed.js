// feed.js - the "Recent inferences" view: polls the newest page of GET /api/v1/inferences,
// merges it with older pages loaded through the `next` cursor, and renders one card per
// inference. Cards are kept by id, so a poll only builds cards (and fetches thumbnails) for
// inferences it has not shown yet. Owned by the web module.

import { ApiError } from './api.js';
import { el, formatTime, headline, isoTime } from './util.js';

const PAGE = 24;
const POLL_MS = 2000;
const THUMB_PARALLEL = 4; // thumbnail fetches in flight at once

export class Feed {
  // opts: { list, more, empty, onOpen(item), onError(ApiError), onOk() }
  constructor(api, opts) {
    this.api = api;
    this.opts = opts;
    this.filter = {};
    this.items = []; // newest first, as the service orders them
    this.next = null; // cursor after the oldest item shown
    this.cards = new Map(); // id -> { li, thumbUrl }
    this.thumbQueue = [];
    this.thumbActive = 0;
    this.generation = 0; // bumped on filter change / stop: late answers are dropped
    this.timer = null;
    this.running = false;
    this.loadingMore = false;
    this.extended = false; // true once "Load more" added older pages
    this.opts.more.addEventListener('click', () => this.loadMore());
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.poll();
  }

  stop() {
    this.running = false;
    this.generation++;
    clearTimeout(this.timer);
    this.timer = null;
  }

  // Drops everything shown (and its blob URLs), e.g. on logout.
  clear() {
    this.extended = false;
    this.items = [];
    this.next = null;
    this.render();
  }

  setFilter(filter) {
    this.filter = filter;
    this.generation++;
    this.extended = false;
    this.items = [];
    this.next = null;
    this.render();
    if (this.running) {
      clearTimeout(this.timer);
      this.poll();
    }
  }

  params(extra) {
    const f = this.filter;
    return { label: f.label, min_score: f.minScore, source: f.source, limit: PAGE, ...extra };
  }

  async poll() {
    const gen = this.generation;
    this.timer = null;
    // A hidden tab does not need fresh cards; the next visible tick catches up.
    if (!document.hidden) {
      try {
        const page = await this.api.inferences(this.params());
        if (gen !== this.generation) return; // filter changed or stopped meanwhile
        this.mergeNewest(page);
        this.opts.onOk();
      } catch (e) {
        if (gen !== this.generation) return;
        this.opts.onError(e);
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return;
      }
    }
    if (this.running && gen === this.generation) {
      this.timer = setTimeout(() => this.poll(), POLL_MS);
    }
  }

  // The newest page replaces the head of the list. Once older pages were loaded: if the page's
  // oldest item is one we already show, the older items after it stay (and so does the cursor);
  // otherwise more than a page arrived since the last poll, and the list restarts from this page.
  mergeNewest(page) {
    const fresh = Array.isArray(page.items) ? page.items : [];
    if (fresh.length === 0) {
      this.items = [];
      this.next = null;
    } else if (!this.extended) {
      // Nothing older was asked for: show exactly the newest page, so the list stays bounded.
      this.items = fresh;
      this.next = page.next || null;
    } else {
      const oldestId = fresh[fresh.length - 1].id;
      const at = this.items.findIndex((it) => it.id === oldestId);
      if (at >= 0) {
        this.items = fresh.concat(this.items.slice(at + 1));
      } else {
        this.items = fresh;
        this.next = page.next || null;
      }
    }
    this.render();
  }

  async loadMore() {
    if (!this.next || this.loadingMore) return;
    const gen = this.generation;
    this.loadingMore = true;
    this.opts.more.disabled = true;
    try {
      const page = await this.api.inferences(this.params({ cursor: this.next }));
      if (gen !== this.generation) return;
      const seen = new Set(this.items.map((it) => it.id));
      const older = (page.items || []).filter((it) => !seen.has(it.id));
      this.items = this.items.concat(older);
      this.next = page.next || null;
      this.extended = true;
      this.render();
    } catch (e) {
      if (gen === this.generation) this.opts.onError(e);
    } finally {
      this.loadingMore = false;
      this.opts.more.disabled = false;
    }
  }

  render() {
    const { list, more, empty } = this.opts;
    const wanted = new Set();
    let cursor = list.firstElementChild;
    for (const item of this.items) {
      wanted.add(item.id);
      let card = this.cards.get(item.id);
      if (!card) {
        card = this.buildCard(item);
        this.cards.set(item.id, card);
      }
      // Insert only what moved, so a focused card keeps its focus across polls.
      if (card.li === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(card.li, cursor);
    }
    while (cursor) {
      const nextEl = cursor.nextElementSibling;
      cursor.remove();
      cursor = nextEl;
    }
    for (const [id, card] of this.cards) {
      if (!wanted.has(id)) {
        if (card.thumbUrl) URL.revokeObjectURL(card.thumbUrl);
        card.dropped = true;
        this.cards.delete(id);
      }
    }
    more.hidden = !this.next;
    empty.hidden = this.items.length > 0;
    const filtered = Boolean(this.filter.label || this.filter.minScore || this.filter.source);
    empty.textContent = filtered
      ? 'No inferences match these filters.'
      : 'No inferences yet. They appear here as soon as a source posts one.';
  }

  buildCard(item) {
    const head = headline(item);
    const thumb = el('div', { class: 'thumb' });
    const card = { li: null, thumbUrl: null, dropped: false };
    if (item.image && item.image.thumbnail_url) {
      thumb.classList.add('loading');
      this.queueThumb(item.image.thumbnail_url, thumb, card);
    } else {
      thumb.classList.add('none');
      thumb.append(el('span', { text: 'no image' }));
    }
    const button = el(
      'button',
      { type: 'button', class: 'card', onclick: () => this.opts.onOpen(item) },
      thumb,
      el(
        'span',
        { class: 'card-body' },
        el(
          'span',
          { class: 'card-head' },
          el('span', { class: 'label', text: head.label }),
          head.score ? el('span', { class: 'score', text: head.score }) : null,
        ),
        el('span', { class: `kind kind-${item.kind}`, text: item.kind }),
        el(
          'span',
          { class: 'meta' },
          el('time', { datetime: isoTime(item.ts), text: formatTime(item.ts) }),
          el('span', { class: 'source', text: item.source || '' }),
        ),
      ),
    );
    button.setAttribute(
      'aria-label',
      `${head.label} ${head.score}, ${item.kind}, ${formatTime(item.ts)}, source ${item.source}. Open details`,
    );
    card.li = el('li', {}, button);
    return card;
  }

  // Thumbnails go through a small queue so a page of 24 cards does not open 24 requests at once.
  queueThumb(path, holder, card) {
    this.thumbQueue.push({ path, holder, card });
    this.pumpThumbs();
  }

  pumpThumbs() {
    while (this.thumbActive < THUMB_PARALLEL && this.thumbQueue.length > 0) {
      const job = this.thumbQueue.shift();
      if (job.card.dropped) continue;
      this.thumbActive++;
      this.api
        .blobUrl(job.path)
        .then((url) => {
          if (job.card.dropped) {
            URL.revokeObjectURL(url);
            return;
          }
          job.card.thumbUrl = url;
          job.holder.classList.remove('loading');
          job.holder.append(el('img', { src: url, alt: '', decoding: 'async' }));
        })
        .catch(() => {
          job.holder.classList.remove('loading');
          job.holder.classList.add('none');
          job.holder.append(el('span', { text: 'image unavailable' }));
        })
        .finally(() => {
          this.thumbActive--;
          this.pumpThumbs();
        });
    }
  }
}
