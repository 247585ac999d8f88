// api.js - the dashboard's REST client for ei-relay (/api/v1). It adds the bearer token to
// every request and turns error answers ({"error":{"code","message"}}) into ApiError, so views
// only deal with data or one error type.

export class ApiError extends Error {
  // status 0 means the service could not be reached at all.
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
    this.onUnauthorized = null; // called once per 401 answer to a request that carried a token
  }

  // method + path with query params (empty values are left out); as: 'json' (default) or 'blob'.
  async request(method, path, { params = null, as = 'json', signal = undefined } = {}) {
    const url = new URL(path, window.location.origin);
    if (params) {
      for (const [key, value] of Object.entries(params)) {
        if (value !== undefined && value !== null && value !== '') {
          url.searchParams.set(key, String(value));
        }
      }
    }
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res;
    try {
      // no-store for JSON: lists must never come from the HTTP cache. Images are immutable
      // by id, so the browser may keep them.
      res = await fetch(url, {
        method,
        headers,
        signal,
        cache: as === 'blob' ? 'default' : 'no-store',
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'Cannot reach ei-relay. Is the service running?');
    }
    if (!res.ok) {
      const err = await errorFrom(res);
      if (err.status === 401 && this.token && this.onUnauthorized) this.onUnauthorized(err);
      throw err;
    }
    if (res.status === 204) return null;
    return as === 'blob' ? res.blob() : res.json();
  }

  get(path, opts) {
    return this.request('GET', path, opts);
  }

  inferences(params, signal) {
    return this.get('/api/v1/inferences', { params, signal });
  }

  inference(id, signal) {
    return this.get(`/api/v1/inferences/${encodeURIComponent(id)}`, { signal });
  }

  remove(id) {
    return this.request('DELETE', `/api/v1/inferences/${encodeURIComponent(id)}`);
  }

  stats(params, signal) {
    return this.get('/api/v1/stats', { params, signal });
  }

  forwarder(signal) {
    return this.get('/api/v1/forwarder', { signal });
  }

  sources(signal) {
    return this.get('/api/v1/sources', { signal });
  }

  health(signal) {
    return this.get('/api/v1/health', { signal });
  }

  // Image bytes as a blob URL: a plain <img src> cannot send the Authorization header.
  // The caller owns the URL and must URL.revokeObjectURL it.
  async blobUrl(path, signal) {
    const blob = await this.get(path, { as: 'blob', signal });
    return URL.createObjectURL(blob);
  }
}

async function errorFrom(res) {
  let code = `http_${res.status}`;
  let message = `The service answered ${res.status} ${res.statusText}.`.replace(' .', '.');
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON (e.g. a proxy's page): keep the generic message.
  }
  return new ApiError(res.status, code, message);
}
