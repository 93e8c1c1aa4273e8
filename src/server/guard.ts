/**
 * What keeps a service on a desktop safe from the web pages its user visits.
 *
 * - DNS rebinding: a page on evil.example can make its name resolve to 127.0.0.1 and then talk to
 *   the service as a "same-origin" site. Its requests still carry `Host: evil.example`, so a
 *   server listening on a loopback address accepts only Host headers that name it: an IP
 *   address (which cannot be rebound), `localhost` (and `*.localhost`), or a name given with
 *   `serve --allowed-host`. A server listening on another address checks Host only when names
 *   are given (behind a proxy, the names it is reached by).
 * - Cross-site form posts: a form on any page can POST `multipart/form-data` (or urlencoded, or
 *   text/plain) to the service without a CORS preflight. A POST whose body is not JSON and whose
 *   `Origin` (or `Sec-Fetch-Site`) says it comes from another site is refused unless that origin
 *   is allowed with `serve --cors ORIGIN`. JSON posts need a preflight, which only `--cors`
 *   origins pass.
 */
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

export interface Guard {
  /** the server listens on a loopback address: Host must name it */
  loopback: boolean;
  /** further Host names accepted (`--allowed-host`); '*' accepts any */
  allowedHosts: string[];
  /** origins whose cross-origin requests are allowed (`--cors`); '*' allows any */
  cors: string[];
}

/** Whether `host` (as given to listen) is a loopback address. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** The name part of a Host header ("[::1]:8080" → "::1", "Example.org:80" → "example.org"). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

function hostAllowed(guard: Guard, header: string): boolean {
  const name = hostName(header).replace(/\.$/, '');
  if (isIP(name) !== 0) return true;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  return guard.allowedHosts.some((a) => a === '*' || a.toLowerCase() === name);
}

function isJson(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return type === 'application/json' || /^application\/[\w.+-]*\+json$/.test(type);
}

/** Throws a 403 HttpError for a request the guard refuses. */
export function guardRequest(guard: Guard, request: FastifyRequest): void {
  const host = request.headers.host;
  if ((guard.loopback || guard.allowedHosts.length > 0) && host !== undefined && !hostAllowed(guard, host)) {
    throw new HttpError(403, 'HOST_NOT_ALLOWED', `Host "${host.slice(0, 100)}" is not a name of this server (a DNS rebinding guard); allow it with serve --allowed-host ${hostName(host).slice(0, 100) || 'NAME'}`);
  }
  if (request.method !== 'POST' || isJson(request.headers['content-type'])) return;
  const origin = request.headers.origin;
  if (origin !== undefined) {
    if (guard.cors.includes('*') || guard.cors.includes(origin)) return;
    let sameOrigin = false;
    try {
      sameOrigin = host !== undefined && new URL(origin).host === host.toLowerCase();
    } catch { /* "null" or garbage: not the same origin */ }
    if (sameOrigin) return;
    throw new HttpError(403, 'CROSS_ORIGIN', `a ${request.headers['content-type']?.split(';')[0] ?? 'non-JSON'} POST from another origin (${origin.slice(0, 100)}) is refused; allow that origin with serve --cors ${origin.slice(0, 100)}`);
  }
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    throw new HttpError(403, 'CROSS_ORIGIN', 'a non-JSON POST from another site is refused; allow its origin with serve --cors ORIGIN');
  }
}
