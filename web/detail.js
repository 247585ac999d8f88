// detail.js - the detail panel of one inference: the full image with its bounding boxes (or
// visual anomaly cells) drawn over it, the classification scores, and the full JSON view.
// Boxes are absolutely positioned divs placed in percent of the model's input resolution, so
// they follow the displayed image size on any screen without resize handling. Owned by the web
// module.

import { el, formatNumber, formatScore, formatTime, headline, isoTime } from './util.js';

export class Detail {
  // dialog: the <dialog> element; its content is rebuilt on every open.
  constructor(dialog) {
    this.dialog = dialog;
    this.api = null;
    this.imageUrl = null;
    this.abort = null;
    dialog.addEventListener('close', () => this.release());
    // A click on the backdrop (outside the panel) closes it, as on most dialogs.
    dialog.addEventListener('click', (ev) => {
      if (ev.target === dialog) dialog.close();
    });
  }

  open(api, item) {
    this.release();
    this.api = api;
    this.abort = new AbortController();
    const head = headline(item);
    const closeBtn = el('button', {
      type: 'button',
      class: 'close',
      'aria-label': 'Close details',
      text: '×',
      onclick: () => this.dialog.close(),
    });
    const title = el(
      'h2',
      { id: 'detail-title' },
      `${head.label}${head.score ? ` · ${head.score}` : ''}`,
    );
    const facts = el(
      'dl',
      { class: 'facts' },
      ...fact('Kind', item.kind),
      ...fact('Time', el('time', { datetime: isoTime(item.ts), text: formatTime(item.ts) })),
      ...fact('Source', item.source),
      ...fact('Device', item.device),
      ...fact('Seq', item.seq),
      ...fact('Id', el('code', { text: item.id })),
      ...(typeof item.anomaly === 'number' ? fact('Anomaly', formatNumber(item.anomaly)) : []),
      ...(item.timing ? fact('Timing', timingText(item.timing)) : []),
    );
    const body = el(
      'div',
      { class: 'detail-body' },
      this.figure(item),
      el('div', { class: 'detail-side' }, facts, scoresTable(item)),
    );
    const json = el(
      'details',
      { class: 'json', open: true },
      el('summary', { text: 'Full JSON' }),
      el('pre', { tabindex: '0', 'aria-label': 'Inference JSON', text: JSON.stringify(item, null, 2) }),
    );
    this.dialog.replaceChildren(el('div', { class: 'detail-head' }, title, closeBtn), body, json);
    this.dialog.setAttribute('aria-labelledby', 'detail-title');
    if (!this.dialog.open) this.dialog.showModal();
    closeBtn.focus();
  }

  figure(item) {
    const frame = el('div', { class: 'frame' });
    const figure = el('figure', { class: 'detail-figure' }, frame);
    if (!item.image || !item.image.url) {
      frame.classList.add('none');
      frame.append(el('span', { text: 'This inference has no image.' }));
      return figure;
    }
    frame.classList.add('loading');
    const img = el('img', { alt: `Image of inference ${item.id}` });
    const regions = overlayRegions(item.result);
    const abort = this.abort;
    this.api
      .blobUrl(item.image.url, abort.signal)
      .then((url) => {
        if (abort.signal.aborted) {
          URL.revokeObjectURL(url);
          return;
        }
        this.imageUrl = url;
        img.addEventListener(
          'load',
          () => {
            frame.classList.remove('loading');
            frame.append(overlay(item, regions, img));
          },
          { once: true },
        );
        img.src = url;
        frame.prepend(img);
      })
      .catch((e) => {
        if (abort.signal.aborted) return;
        frame.classList.remove('loading');
        frame.classList.add('none');
        frame.append(el('span', { text: `Image unavailable: ${e.message}` }));
      });
    if (regions.length > 0) {
      const n = regions.length;
      const what = regions[0].cell ? `anomaly cell${n === 1 ? '' : 's'}` : `box${n === 1 ? '' : 'es'}`;
      figure.append(el('figcaption', { text: `${n} ${what}, drawn from model coordinates` }));
    }
    return figure;
  }

  release() {
    if (this.abort) this.abort.abort();
    this.abort = null;
    if (this.imageUrl) URL.revokeObjectURL(this.imageUrl);
    this.imageUrl = null;
  }

  close() {
    if (this.dialog.open) this.dialog.close();
    this.release();
  }
}

function fact(name, value) {
  if (value === undefined || value === null || value === '') return [];
  return [el('dt', { text: name }), el('dd', {}, value instanceof Node ? value : String(value))];
}

function timingText(timing) {
  return Object.entries(timing)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => `${k} ${v} ms`)
    .join(', ');
}

// Boxes and anomaly-grid cells share the Edge Impulse shape {label, value, x, y, width, height}.
function overlayRegions(result) {
  const regions = [];
  if (!result || typeof result !== 'object') return regions;
  const add = (list, cell) => {
    if (!Array.isArray(list)) return;
    for (const r of list) {
      if (r && [r.x, r.y, r.width, r.height].every((v) => typeof v === 'number')) {
        regions.push({ ...r, cell });
      }
    }
  };
  add(result.bounding_boxes, false);
  add(result.visual_anomaly_grid, true);
  return regions;
}

// The coordinate space of the boxes: the model's input resolution; if unknown, the image's.
function coordinateSpace(item, img) {
  const m = item.model;
  if (m && m.width > 0 && m.height > 0) return { w: m.width, h: m.height };
  const i = item.image;
  if (i && i.width > 0 && i.height > 0) return { w: i.width, h: i.height };
  return { w: img.naturalWidth || 1, h: img.naturalHeight || 1 };
}

function overlay(item, regions, img) {
  const layer = el('div', { class: 'overlay', 'aria-hidden': 'true' });
  const space = coordinateSpace(item, img);
  const pct = (v, of) => `${Math.min(100, Math.max(0, (v / of) * 100))}%`;
  for (const r of regions) {
    const box = el('div', { class: r.cell ? 'box cell' : 'box' });
    box.style.left = pct(r.x, space.w);
    box.style.top = pct(r.y, space.h);
    box.style.width = pct(Math.min(r.width, space.w - r.x), space.w);
    box.style.height = pct(Math.min(r.height, space.h - r.y), space.h);
    const score = r.cell ? formatNumber(r.value, 2) : formatScore(r.value);
    box.append(el('span', { class: 'box-label', text: `${r.label ?? ''} ${score}`.trim() }));
    layer.append(box);
  }
  return layer;
}

// Scores as a table: classification values, or each box / cell, best first.
function scoresTable(item) {
  const r = item.result || {};
  let rows = [];
  if (r.classification && typeof r.classification === 'object') {
    rows = Object.entries(r.classification).map(([label, value]) => ({ label, value }));
  } else {
    rows = overlayRegions(r).map((b) => ({
      label: b.label,
      value: b.value,
      where: `${b.x},${b.y} ${b.width}×${b.height}`,
    }));
  }
  if (rows.length === 0) return null;
  rows.sort((a, b) => (b.value ?? 0) - (a.value ?? 0));
  const withWhere = rows.some((row) => row.where);
  const isCell = item.kind === 'visual-anomaly';
  return el(
    'table',
    { class: 'scores' },
    el('caption', { text: r.classification ? 'Classification' : isCell ? 'Anomaly cells' : 'Boxes' }),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col', text: 'Label' }),
        el('th', { scope: 'col', text: isCell ? 'Value' : 'Score' }),
        withWhere ? el('th', { scope: 'col', text: 'x,y w×h' }) : null,
      ),
    ),
    el(
      'tbody',
      {},
      ...rows.map((row) =>
        el(
          'tr',
          {},
          el('td', { text: row.label ?? '' }),
          el('td', {}, isCell ? formatNumber(row.value, 3) : scoreBar(row.value)),
          withWhere ? el('td', { text: row.where }) : null,
        ),
      ),
    ),
  );
}

function scoreBar(value) {
  const v = typeof value === 'number' ? Math.min(1, Math.max(0, value)) : 0;
  const bar = el('span', { class: 'bar', 'aria-hidden': 'true' }, el('span', {}));
  bar.firstChild.style.width = `${v * 100}%`;
  return el('span', { class: 'score-cell' }, bar, el('span', { text: formatScore(value) }));
}
