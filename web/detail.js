// detail.js - the detail dialog of one inference: the full image with its bounding boxes (or
// visual anomaly cells) drawn over it, the facts, the scores, the full JSON as the relay
// stores it, a download of the image, and, for an admin token, delete (with a confirmation).

import { ApiError } from './api.js';
import { createMedia, regionsOf } from './media.js';
import {
  colorFor,
  el,
  fact,
  formatAnomaly,
  formatScore,
  formatTime,
  headline,
  isoTime,
  kindText,
} from './util.js';

export class Detail {
  // dialog: the <dialog>; opts: { loader, canDelete(): bool, onDeleted(id), onError(e) }
  constructor(dialog, opts) {
    this.dialog = dialog;
    this.opts = opts;
    this.api = null;
    this.media = null;
    this.item = null;
    this.abort = null;
    this.returnFocus = null;
    dialog.addEventListener('close', () => this.release());
    // A click on the backdrop (outside the panel) closes it, as on most dialogs.
    dialog.addEventListener('click', (ev) => {
      if (ev.target === dialog) dialog.close();
    });
  }

  open(api, item) {
    this.release();
    this.api = api;
    this.item = item;
    this.abort = new AbortController();
    if (!this.dialog.open) this.returnFocus = document.activeElement;
    this.render(item);
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.querySelector('.close').focus();
    // The list's copy may be stale (publish state, a delete elsewhere): fetch the stored one.
    const abort = this.abort;
    api
      .inference(item.id, abort.signal)
      .then((fresh) => {
        if (abort.signal.aborted || this.item !== item) return;
        this.item = fresh;
        this.setJson(fresh);
        this.setFact('Publish', fresh.publish);
      })
      .catch((e) => {
        if (abort.signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) this.setStatus('This inference is no longer stored.', 'warn');
      });
  }

  render(item) {
    const head = headline(item);
    const closeBtn = el('button', {
      type: 'button',
      class: 'close secondary',
      'aria-label': 'Close details',
      text: '×',
      onclick: () => this.dialog.close(),
    });
    const title = el('h2', { id: 'detail-title' }, `${head.label}${head.score ? ` · ${head.score}` : ''}`);
    this.media = createMedia(item, { variant: 'full', loader: this.opts.loader, front: true });
    const regions = regionsOf(item.result);
    const caption =
      regions.length > 0
        ? el('figcaption', {
            text: `${regions.length} ${regions[0].cell ? 'anomaly cell' : 'box'}${regions.length === 1 ? '' : regions[0].cell ? 's' : 'es'} drawn in model coordinates (${spaceText(item)})`,
          })
        : null;
    const figure = el('figure', { class: 'detail-figure' }, this.media.root, caption);
    const model = item.model && item.model.width ? `${item.model.width}×${item.model.height}` : null;
    const image = item.image
      ? `${item.image.width}×${item.image.height} ${item.image.mime || ''}`.trim()
      : 'none';
    const facts = el(
      'dl',
      { class: 'facts' },
      fact('Kind', kindText(item)),
      fact('Time', el('time', { datetime: isoTime(item.ts), text: formatTime(item.ts) })),
      fact('Source', item.source),
      fact('Device', item.device),
      fact('Seq', item.seq),
      fact('Id', el('code', { text: item.id })),
      typeof item.anomaly === 'number' ? fact('Anomaly', formatAnomaly(item.anomaly), { 'data-fact': 'Anomaly' }) : [],
      item.timing ? fact('Timing', timingText(item.timing)) : [],
      fact('Model input', model),
      fact('Image', image),
      fact('Publish', item.publish, { 'data-fact': 'Publish' }),
    );
    const actions = el('div', { class: 'detail-actions' });
    if (item.image && item.image.url) {
      actions.append(
        el('button', {
          type: 'button',
          class: 'secondary small',
          text: 'Download image',
          onclick: () => this.download(item),
        }),
      );
    }
    if (this.opts.canDelete()) actions.append(this.deleteControls(item));
    const status = el('p', { class: 'detail-status', role: 'status', hidden: true });
    const body = el(
      'div',
      { class: 'detail-body' },
      figure,
      el('div', { class: 'detail-side' }, facts, scoresTable(item), actions, status),
    );
    const json = el(
      'details',
      { class: 'json', open: true },
      el('summary', { text: 'Full JSON' }),
      el('pre', { tabindex: '0', 'aria-label': 'Inference JSON', class: 'json-text', text: JSON.stringify(item, null, 2) }),
    );
    this.dialog.replaceChildren(el('div', { class: 'detail-head' }, title, closeBtn), body, json);
    this.dialog.setAttribute('aria-labelledby', 'detail-title');
  }

  deleteControls(item) {
    const wrap = el('span', { class: 'delete-wrap' });
    const ask = el('button', { type: 'button', class: 'danger small', text: 'Delete…' });
    const confirm = el('button', { type: 'button', class: 'danger small', text: 'Delete for good' });
    const cancel = el('button', { type: 'button', class: 'secondary small', text: 'Keep' });
    const question = el('span', { class: 'confirm', role: 'group', 'aria-label': 'Confirm delete' },
      el('span', { text: 'Delete this inference and its image?' }), confirm, cancel);
    question.hidden = true;
    ask.addEventListener('click', () => {
      ask.hidden = true;
      question.hidden = false;
      cancel.focus();
    });
    cancel.addEventListener('click', () => {
      question.hidden = true;
      ask.hidden = false;
      ask.focus();
    });
    confirm.addEventListener('click', async () => {
      confirm.disabled = cancel.disabled = true;
      try {
        await this.api.remove(item.id);
        this.opts.onDeleted(item.id);
        this.dialog.close();
      } catch (e) {
        confirm.disabled = cancel.disabled = false;
        if (e instanceof ApiError && e.status === 404) {
          this.opts.onDeleted(item.id);
          this.setStatus('It was already deleted.', 'warn');
        } else if (e instanceof ApiError && e.status === 403) {
          this.setStatus('This token may not delete (admin role needed).', 'error');
        } else {
          this.setStatus(`Delete failed: ${e.message}`, 'error');
        }
      }
    });
    wrap.append(ask, question);
    return wrap;
  }

  async download(item) {
    try {
      const url = await this.api.blobUrl(item.image.url);
      const ext = (item.image.mime || '').includes('png') ? 'png' : 'jpg';
      const a = el('a', { href: url, download: `${item.id}.${ext}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      this.setStatus(`Download failed: ${e.message}`, 'error');
    }
  }

  setJson(item) {
    const pre = this.dialog.querySelector('.json-text');
    if (pre) pre.textContent = JSON.stringify(item, null, 2);
  }

  setFact(name, value) {
    const dd = this.dialog.querySelector(`dd[data-fact="${name}"]`);
    if (dd && value) dd.textContent = String(value);
  }

  setStatus(text, kind) {
    const p = this.dialog.querySelector('.detail-status');
    if (!p) return;
    p.textContent = text;
    p.className = `detail-status ${kind || ''}`;
    p.hidden = !text;
  }

  // Another tab or client deleted it: close if it is the one shown.
  removed(id) {
    if (this.dialog.open && this.item && this.item.id === id) this.setStatus('This inference was deleted.', 'warn');
  }

  release() {
    if (this.abort) this.abort.abort();
    this.abort = null;
    if (this.media) this.media.release();
    this.media = null;
    if (this.returnFocus && !this.dialog.open && document.contains(this.returnFocus)) {
      this.returnFocus.focus();
    }
    this.returnFocus = null;
  }

  close() {
    if (this.dialog.open) this.dialog.close();
    this.release();
  }
}

function spaceText(item) {
  const m = item.model;
  if (m && m.width > 0 && m.height > 0) return `${m.width}×${m.height}`;
  const i = item.image;
  if (i && i.width > 0) return `image ${i.width}×${i.height}`;
  return 'unknown size';
}

function timingText(timing) {
  return Object.entries(timing)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => `${k} ${v} ms`)
    .join(', ');
}

// Scores as a table: classification values, or each box / cell, best first.
function scoresTable(item) {
  const r = item.result || {};
  let rows = [];
  if (r.classification && typeof r.classification === 'object') {
    rows = Object.entries(r.classification).map(([label, value]) => ({ label, value }));
  } else {
    rows = regionsOf(r).map((b) => ({
      label: b.label,
      value: b.value,
      where: `${b.x},${b.y} ${b.width}×${b.height}`,
    }));
  }
  if (rows.length === 0) return null;
  rows.sort((a, b) => (b.value ?? 0) - (a.value ?? 0));
  const withWhere = rows.some((row) => row.where);
  const isCell = Array.isArray(r.visual_anomaly_grid) && !r.classification && !Array.isArray(r.bounding_boxes);
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
      rows.slice(0, 200).map((row) =>
        el(
          'tr',
          {},
          el('td', {}, el('span', { class: 'swatch', style: { background: colorFor(row.label ?? '') } }), row.label ?? ''),
          el('td', {}, isCell ? formatAnomaly(row.value) : scoreBar(row.value, row.label)),
          withWhere ? el('td', { text: row.where }) : null,
        ),
      ),
    ),
  );
}

function scoreBar(value, label) {
  const v = typeof value === 'number' ? Math.min(1, Math.max(0, value)) : 0;
  const bar = el('span', { class: 'bar', 'aria-hidden': 'true' }, el('span', {}));
  bar.firstChild.style.width = `${v * 100}%`;
  bar.firstChild.style.background = colorFor(label ?? '');
  return el('span', { class: 'score-cell' }, bar, el('span', { text: formatScore(value) }));
}
