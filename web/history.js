// history.js - the History view: the cache filtered by label, minimum score, source and time
// range (GET /api/v1/inferences), newest first, one page at a time through the `next` cursor.
// Inferences that arrive live and match the filter are counted, and "Show new" reloads the top.

import { ApiError } from './api.js';
import { CardList } from './cards.js';
import { formatCount, fromLocalInput, labelScores } from './util.js';

const PAGE = 24;

export class HistoryView {
  // els: { form, list, more, empty, error, summary, newer, refresh, fields: {label, score,
  //        source, since, until} }; opts: { loader, onOpen(item), onError(e) }
  constructor(els, opts) {
    this.els = els;
    this.opts = opts;
    this.api = null;
    this.cards = new CardList(els.list, { loader: opts.loader, onOpen: opts.onOpen });
    this.filter = {};
    this.next = null;
    this.loaded = false;
    this.loading = false;
    this.generation = 0;
    this.newer = 0;
    els.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!els.form.reportValidity()) return;
      this.applyForm();
    });
    // type="reset" clears the fields; the reload waits until they are cleared.
    els.form.addEventListener('reset', () => setTimeout(() => this.applyForm(), 0));
    els.more.addEventListener('click', () => this.loadMore());
    els.refresh.addEventListener('click', () => this.reload());
    els.newer.addEventListener('click', () => this.reload());
  }

  start(api) {
    this.api = api;
    this.loaded = false;
  }

  stop() {
    this.api = null;
    this.generation++;
    this.cards.clear();
    this.next = null;
    this.loaded = false;
    this.setNewer(0);
    this.els.summary.textContent = '';
    this.els.empty.hidden = true;
    this.els.more.hidden = true;
  }

  // Called when the view becomes visible: the first visit loads the first page.
  shown() {
    if (!this.loaded && this.api) this.reload();
  }

  readForm() {
    const f = this.els.fields;
    const since = fromLocalInput(f.since.value);
    const until = fromLocalInput(f.until.value);
    return {
      label: f.label.value.trim(),
      min_score: f.score.value.trim(),
      source: f.source.value.trim(),
      since: since ?? '',
      until: until ?? '',
    };
  }

  applyForm() {
    const filter = this.readForm();
    if (filter.since !== '' && filter.until !== '' && filter.since >= filter.until) {
      this.showError('"From" must be before "Until".');
      return;
    }
    this.filter = filter;
    this.reload();
  }

  params(extra) {
    return { ...this.filter, limit: PAGE, ...extra };
  }

  async reload() {
    if (!this.api) return;
    const gen = ++this.generation;
    this.loading = true;
    this.els.list.setAttribute('aria-busy', 'true');
    try {
      const page = await this.api.inferences(this.params());
      if (gen !== this.generation) return;
      this.cards.clear();
      this.cards.append(page.items || []);
      this.next = page.next || null;
      this.loaded = true;
      this.setNewer(0);
      this.showError(null);
      this.render();
    } catch (e) {
      if (gen === this.generation) this.fail(e);
    } finally {
      if (gen === this.generation) {
        this.loading = false;
        this.els.list.removeAttribute('aria-busy');
      }
    }
  }

  async loadMore() {
    if (!this.api || !this.next || this.loading) return;
    const gen = this.generation;
    this.loading = true;
    this.els.more.disabled = true;
    try {
      const page = await this.api.inferences(this.params({ cursor: this.next }));
      if (gen !== this.generation) return;
      this.cards.append(page.items || []);
      this.next = page.next || null;
      this.render();
    } catch (e) {
      if (gen === this.generation) this.fail(e);
    } finally {
      this.loading = false;
      this.els.more.disabled = false;
    }
  }

  fail(e) {
    if (e instanceof ApiError && e.status === 401) return; // the app signs out
    this.showError(e.message || String(e));
    this.opts.onError(e);
  }

  showError(message) {
    this.els.error.textContent = message || '';
    this.els.error.hidden = !message;
  }

  // A live inference: counted when it matches the filter and the list is loaded.
  arrived(item) {
    if (!this.loaded || !matches(item, this.filter)) return;
    this.setNewer(this.newer + 1);
  }

  remove(id) {
    if (this.cards.remove(id)) this.render();
  }

  setNewer(n) {
    this.newer = n;
    this.els.newer.hidden = n === 0;
    this.els.newer.textContent = `Show ${formatCount(n)} new`;
  }

  render() {
    const n = this.cards.size;
    const filtered = Boolean(
      this.filter.label || this.filter.min_score || this.filter.source || this.filter.since || this.filter.until,
    );
    this.els.more.hidden = !this.next;
    this.els.empty.hidden = n > 0;
    this.els.empty.textContent = filtered
      ? 'No inferences match these filters.'
      : 'No inferences stored yet. They appear here as soon as a source posts one.';
    const what = filtered ? 'matching inferences' : 'inferences';
    this.els.summary.textContent =
      n === 0 ? '' : this.next ? `${formatCount(n)} newest ${what} shown; older ones below.` : `All ${formatCount(n)} ${what} shown.`;
  }
}

// The REST filter's meaning, client side: min_score with a label is that label's score.
function matches(item, f) {
  if (f.source && item.source !== f.source) return false;
  if (f.since !== '' && f.since !== undefined && item.ts < f.since) return false;
  if (f.until !== '' && f.until !== undefined && item.ts >= f.until) return false;
  const min = f.min_score === '' || f.min_score === undefined ? null : Number(f.min_score);
  if (f.label) {
    const scores = labelScores(item);
    if (!scores.has(f.label)) return false;
    if (min !== null && !(scores.get(f.label) >= min)) return false;
  } else if (min !== null && !(item.top_score >= min)) {
    return false;
  }
  return true;
}
