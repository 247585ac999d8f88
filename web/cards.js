// cards.js - a grid of inference cards (thumbnail with its boxes, label, score, time, source),
// shared by the live view and the history. Cards are kept by id, so re-rendering the same
// inference never refetches its thumbnail; removed cards abort their fetch and free their blob
// URL. Live notices ("12 inferences missed") are list items of their own.

import { createMedia } from './media.js';
import { el, extraAnomaly, formatTime, headline, isoTime, kindText } from './util.js';

export class CardList {
  // opts: { loader, onOpen(item), front: newest thumbnails first, max: cards kept,
  //         thumbDelay: ms a card waits before its thumbnail is fetched }
  constructor(list, opts) {
    this.list = list;
    this.opts = opts;
    this.cards = new Map(); // id -> { li, media, item }
  }

  get size() {
    return this.cards.size;
  }

  has(id) {
    return this.cards.has(id);
  }

  // entries newest first, inferences or notices ({notice, kind}); they go above everything.
  prepend(entries) {
    const frag = document.createDocumentFragment();
    for (const entry of entries) {
      if (entry.notice) frag.append(noticeItem(entry.notice, entry.kind));
      else if (!this.cards.has(entry.id)) frag.append(this.build(entry).li);
    }
    this.list.prepend(frag);
    this.trim();
  }

  // items newest first; they go below everything shown (older pages).
  append(items) {
    const frag = document.createDocumentFragment();
    for (const item of items) {
      if (this.cards.has(item.id)) continue;
      frag.append(this.build(item).li);
    }
    this.list.append(frag);
    this.trim();
  }

  remove(id) {
    const card = this.cards.get(id);
    if (!card) return false;
    card.media.release();
    card.li.remove();
    this.cards.delete(id);
    return true;
  }

  clear() {
    for (const card of this.cards.values()) card.media.release();
    this.cards.clear();
    this.list.replaceChildren();
  }

  items() {
    return [...this.cards.values()].map((c) => c.item);
  }

  // Keeps at most opts.max list items (cards and notices), dropping the oldest.
  trim() {
    const max = this.opts.max ?? Infinity;
    while (this.list.children.length > max) {
      const li = this.list.lastElementChild;
      const id = li.dataset.id;
      if (id && this.cards.has(id)) {
        this.cards.get(id).media.release();
        this.cards.delete(id);
      }
      li.remove();
    }
  }

  build(item) {
    const head = headline(item);
    const media = createMedia(item, {
      variant: 'thumb',
      loader: this.opts.loader,
      front: Boolean(this.opts.front),
      labels: true,
      lazy: true,
      delay: this.opts.thumbDelay || 0,
    });
    const when = formatTime(item.ts);
    const anomaly = extraAnomaly(item); // K-means score next to a classification
    const button = el(
      'button',
      {
        type: 'button',
        class: 'card',
        'aria-label': `${head.label} ${head.score}${anomaly ? `, anomaly ${anomaly}` : ''}, ${kindText(item)}, ${when}, source ${item.source}. Open details`,
        onclick: () => this.opts.onOpen(item),
      },
      media.root,
      el(
        'span',
        { class: 'card-body' },
        el(
          'span',
          { class: 'card-head' },
          el('span', { class: 'label', text: head.label }),
          head.score ? el('span', { class: head.raw ? 'score raw' : 'score', text: head.score }) : null,
        ),
        anomaly
          ? el('span', { class: 'meta anomaly' }, el('span', { text: 'anomaly' }), el('span', { class: 'anomaly-score', text: anomaly }))
          : null,
        el(
          'span',
          { class: 'meta' },
          el('time', { datetime: isoTime(item.ts), text: when }),
          el('span', { class: 'kind', text: kindText(item) }),
        ),
        el(
          'span',
          { class: 'meta' },
          el('span', { class: 'source', text: item.source || '' }),
          el('span', { class: 'seq', text: `#${item.seq}` }),
        ),
      ),
    );
    const li = el('li', { 'data-id': item.id, 'data-seq': String(item.seq) }, button);
    const card = { li, media, item };
    this.cards.set(item.id, card);
    return card;
  }
}

function noticeItem(text, kind = 'info') {
  return el('li', { class: `notice notice-${kind}`, role: 'note' }, el('span', { text }));
}
