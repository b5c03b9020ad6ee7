// The REST client of the pages: JSON in and out, the error body of docs/api.md
// turned into an ApiError, and the visitor's language sent as Accept-Language
// so that server messages (such as invalid_pin) come in the chosen language.

import { getLang } from './i18n.js';

/** ApiError is a failed call: the HTTP status (0 when the network failed), the error code and the server's message. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.serverMessage = message || '';
    this.retryAfter = retryAfter;
  }
}

/** api calls method path with an optional JSON body and returns the decoded answer (null for 204). */
export async function api(method, path, body) {
  const headers = {
    Accept: 'application/json',
    'Accept-Language': getLang() === 'ja' ? 'ja, en;q=0.5' : 'en, ja;q=0.5',
  };
  const opts = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch {
    throw new ApiError(0, 'network', '');
  }
  let data = null;
  const text = res.status === 204 ? '' : await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const retry = Number.parseInt(res.headers.get('Retry-After') || '', 10);
    throw new ApiError(res.status, data?.error || `http_${res.status}`, data?.message || '', Number.isFinite(retry) ? retry : undefined);
  }
  return data;
}
