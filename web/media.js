// media.js - an inference's picture with its bounding boxes / anomaly-grid cells drawn over it.
//
// The image endpoints need the bearer header, so images are fetched (through ImageLoader, a
// small queue that bounds parallel requests) and shown from blob URLs.
//
// Geometry: .media is a box of fixed aspect; inside it .frame has exactly the image's aspect
// and is as large as fits (CSS container units), so the frame IS the displayed picture. Boxes
// are absolutely positioned in percent of the frame, computed from the model's input
// resolution (model.width/height when present, else the image size): they stay on their
// objects at any display size, without resize handling.

import { colorFor, el, formatNumber, formatScore } from './util.js';

export class ImageLoader {
  constructor(parallel = 4) {
    this.api = null;
    this.parallel = parallel;
    this.queue = [];
    this.active = 0;
  }

  // Resolves to a blob URL that the caller must revoke. A job whose signal aborted before it
  // started is dropped; front: true jumps the queue (the live view wants the newest first).
  load(path, { signal = undefined, front = false } = {}) {
    return new Promise((resolve, reject) => {
      const job = { path, signal, resolve, reject };
      if (front) this.queue.unshift(job);
      else this.queue.push(job);
      this.pump();
    });
  }

  pump() {
    while (this.active < this.parallel && this.queue.length > 0) {
      const job = this.queue.shift();
      if (job.signal && job.signal.aborted) {
        job.reject(new DOMException('aborted', 'AbortError'));
        continue;
      }
      if (!this.api) {
        job.reject(new Error('signed out'));
        continue;
      }
      this.active++;
      this.api
        .blobUrl(job.path, job.signal)
        .then(job.resolve, job.reject)
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
  }
}

// Boxes and anomaly-grid cells share the Edge Impulse shape {label, value, x, y, width, height}.
export function regionsOf(result) {
  const regions = [];
  if (!result || typeof result !== 'object') return regions;
  const add = (list, cell) => {
    if (!Array.isArray(list)) return;
    for (const r of list) {
      if (r && [r.x, r.y, r.width, r.height].every((v) => typeof v === 'number' && Number.isFinite(v))) {
        regions.push({ label: r.label, value: r.value, x: r.x, y: r.y, width: r.width, height: r.height, cell });
      }
    }
  };
  add(result.bounding_boxes, false);
  add(result.visual_anomaly_grid, true);
  return regions;
}

// The coordinate space of the boxes: the model's input resolution; if unknown, the image's;
// if neither is known, the smallest space that holds every box.
export function coordSpace(item, regions = regionsOf(item.result)) {
  const m = item.model;
  if (m && m.width > 0 && m.height > 0) return { w: m.width, h: m.height };
  const i = item.image;
  if (i && i.width > 0 && i.height > 0) return { w: i.width, h: i.height };
  let w = 1;
  let h = 1;
  for (const r of regions) {
    w = Math.max(w, r.x + r.width);
    h = Math.max(h, r.y + r.height);
  }
  return { w, h };
}

function aspectOf(item) {
  const i = item.image;
  if (i && i.width > 0 && i.height > 0) return i.width / i.height;
  const m = item.model;
  if (m && m.width > 0 && m.height > 0) return m.width / m.height;
  return 4 / 3;
}

// Builds the picture of one inference. variant: 'thumb' (the thumbnail endpoint) or 'full'.
// Returns { root, ready, release() }: ready settles when the image is shown (or failed / none);
// release() aborts a pending fetch and frees the blob URL. lazy: fetch only once the picture
// has been on screen for `delay` ms (a live card pushed away sooner, or a history card never
// scrolled to, costs the relay no thumbnail).
export function createMedia(item, { variant = 'thumb', loader, front = false, labels = true, lazy = false, delay = 0 }) {
  const abort = new AbortController();
  const frame = el('span', { class: 'frame' });
  frame.style.setProperty('--ar', String(aspectOf(item)));
  const root = el('span', { class: `media media-${variant}` }, frame);
  const regions = regionsOf(item.result);
  if (regions.length > 0) frame.append(overlay(item, regions, labels));
  const state = {
    root,
    url: null,
    release() {
      abort.abort();
      if (state.url) URL.revokeObjectURL(state.url);
      state.url = null;
    },
    ready: null,
  };
  const img = item.image;
  const path = img && (variant === 'thumb' ? img.thumbnail_url || img.url : img.url || img.thumbnail_url);
  if (!path || !loader) {
    root.classList.add('no-image');
    frame.append(el('span', { class: 'placeholder', text: 'no image' }));
    state.ready = Promise.resolve(false);
    return state;
  }
  root.classList.add('loading');
  const queued =
    lazy && 'IntersectionObserver' in window
      ? whenSeen(root, delay, abort.signal).then(() => loader.load(path, { signal: abort.signal, front }))
      : loader.load(path, { signal: abort.signal, front });
  state.ready = queued
    .then(
      (url) =>
        new Promise((resolve) => {
          if (abort.signal.aborted) {
            URL.revokeObjectURL(url);
            resolve(false);
            return;
          }
          state.url = url;
          const picture = el('img', { alt: '', decoding: 'async', draggable: 'false' });
          const done = (ok) => {
            root.classList.remove('loading');
            root.classList.add(ok ? 'loaded' : 'failed');
            // Without size metadata, the decoded image tells the aspect.
            if (ok && !(img.width > 0 && img.height > 0) && picture.naturalHeight > 0) {
              frame.style.setProperty('--ar', String(picture.naturalWidth / picture.naturalHeight));
            }
            resolve(ok);
          };
          picture.addEventListener('load', () => done(true), { once: true });
          picture.addEventListener('error', () => done(false), { once: true });
          picture.src = url;
          frame.prepend(picture);
        }),
    )
    .catch((e) => {
      if (abort.signal.aborted || (e && e.name === 'AbortError')) return false;
      root.classList.remove('loading');
      root.classList.add('failed');
      frame.append(el('span', { class: 'placeholder', text: 'image unavailable' }));
      return false;
    });
  return state;
}

// Resolves once `node` has been in the viewport for `delay` ms without a break; rejects (as
// an abort) when the signal aborts first.
const watched = new Map(); // node -> callback(visible)
let observer = null;
function whenSeen(node, delay, signal) {
  if (!observer) {
    observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const cb = watched.get(e.target);
        if (cb) cb(e.isIntersecting);
      }
    });
  }
  return new Promise((resolve, reject) => {
    let timer = null;
    const done = () => {
      clearTimeout(timer);
      watched.delete(node);
      observer.unobserve(node);
    };
    watched.set(node, (visible) => {
      clearTimeout(timer);
      if (!visible) return;
      timer = setTimeout(() => {
        done();
        resolve();
      }, delay);
    });
    observer.observe(node);
    signal.addEventListener('abort', () => {
      done();
      reject(new DOMException('aborted', 'AbortError'));
    });
  });
}

function overlay(item, regions, labels) {
  const layer = el('span', { class: 'overlay', 'aria-hidden': 'true' });
  const space = coordSpace(item, regions);
  const pct = (v, of) => `${Math.min(100, Math.max(0, (v / of) * 100))}%`;
  for (const r of regions) {
    const box = el('span', { class: r.cell ? 'box cell' : 'box', 'data-label': r.label ?? '' });
    const x = Math.max(0, r.x);
    const y = Math.max(0, r.y);
    box.style.left = pct(x, space.w);
    box.style.top = pct(y, space.h);
    box.style.width = pct(Math.min(r.width - (x - r.x), space.w - x), space.w);
    box.style.height = pct(Math.min(r.height - (y - r.y), space.h - y), space.h);
    if (!r.cell) box.style.setProperty('--c', colorFor(r.label ?? ''));
    else box.style.setProperty('--a', String(cellAlpha(r.value)));
    if (labels) {
      const score = r.cell ? formatNumber(r.value, 2) : formatScore(r.value);
      const text = r.cell ? score : `${r.label ?? ''} ${score}`.trim();
      box.append(el('span', { class: 'box-label', text }));
    }
    layer.append(box);
  }
  return layer;
}

// Anomaly cells are tinted by their score (scores are often > 1; 0..~10 is the useful range).
function cellAlpha(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return 0.25;
  return Math.min(0.6, 0.15 + Math.max(0, value) / 20);
}
