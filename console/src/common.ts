// What the three browser pages share: the bearer token (a `?token=` URL parameter or the login
// field, kept in sessionStorage), the HTTP client of the /v1 API, the socket.io connection
// with gap-free seq tracking (reconnects with `auth.lastSeq`), and small formatting helpers.
// The socket contract's types come from src/shared/events.ts; nothing is copied here.

import { io, type Socket } from 'socket.io-client';
import type { IncidentType, LonLat, UnitStatus } from '../../src/core/types.ts';
import type { DistrictConfig } from '../../src/engine/api.ts';
import type { ClientToServerEvents, Envelope, ServerToClientEvents } from '../../src/shared/events.ts';

export type DispatchSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

// ---------------------------------------------------------------- DOM helpers

export function $<T extends HTMLElement = HTMLElement>(selector: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

type Attrs = Record<string, string | number | boolean | undefined>;

/** Creates an element; `attrs` keys starting with `data-`, `aria-` or plain attribute names. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}

/** A short message at the bottom of the screen (errors stay longer). */
export function toast(message: string, kind: 'info' | 'error' = 'info'): void {
  let box = document.querySelector<HTMLElement>('#toasts');
  if (!box) {
    box = h('div', { id: 'toasts', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(t);
  window.setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

// ---------------------------------------------------------------- token

/** The claims the page reads from its token (never trusted: the server checks everything). */
export interface TokenClaims {
  role?: string;
  unitId?: string;
  sub?: string;
  exp?: number;
}

export function decodeToken(token: string): TokenClaims | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), '='));
    const claims = JSON.parse(json) as unknown;
    return typeof claims === 'object' && claims !== null ? (claims as TokenClaims) : undefined;
  } catch {
    return undefined;
  }
}

/** Takes `?token=` from the URL (then removes it from the address bar) or sessionStorage. */
export function takeToken(storageKey: string): string | undefined {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(storageKey, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return sessionStorage.getItem(storageKey) ?? undefined;
}

/**
 * Shows the login form of the page (`#login`) until a token is entered; resolves with it.
 * `check` may refuse a token (wrong role), answering the message to show.
 */
export function askToken(
  storageKey: string,
  check: (claims: TokenClaims | undefined) => string | undefined,
  message?: string,
): Promise<string> {
  const form = $<HTMLFormElement>('#login');
  const input = $<HTMLInputElement>('input[name=token]', form);
  const error = $('.login-error', form);
  error.textContent = message ?? '';
  form.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      const refused = token ? check(decodeToken(token)) : 'Paste a token';
      if (refused) {
        error.textContent = refused;
        return;
      }
      sessionStorage.setItem(storageKey, token);
      form.hidden = true;
      resolve(token);
    };
  });
}

// ---------------------------------------------------------------- HTTP

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Random id for Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function randomKey(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class Api {
  constructor(
    private readonly token: string,
    private readonly base = '',
  ) {}

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? res.statusText);
    }
    return json as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown = {}, headers: Record<string, string> = {}): Promise<T> {
    return this.request<T>('POST', path, body, headers);
  }

  district(): Promise<DistrictConfig> {
    return this.get<DistrictConfig>('/v1/config');
  }

  /** The newest seq of the caller's push stream (consoles or unit:<id>). */
  async streamHead(): Promise<number> {
    const r = await this.get<{ lastSeq: number }>('/v1/messages?after=0&limit=1');
    return r.lastSeq;
  }
}

export const errorText = (err: unknown): string =>
  err instanceof ApiError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);

// ---------------------------------------------------------------- socket

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'refused';

export interface StreamOptions {
  token: string;
  /** The seq the page's snapshot is as of: the server replays everything after it. */
  lastSeq: number;
  onState: (s: ConnectionState, detail?: string) => void;
  /** Called when the server refuses the token (expired, invalid). */
  onUnauthorized: (code: string) => void;
}

/**
 * One socket.io connection with seq tracking. Every connection (the first and each
 * reconnection) sends `auth: { token, lastSeq }`, so the server replays what was missed;
 * envelopes at or below the last seq seen are dropped (a replay may repeat them).
 */
export class Stream {
  readonly socket: DispatchSocket;
  lastSeq: number;

  constructor(opts: StreamOptions) {
    this.lastSeq = opts.lastSeq;
    this.socket = io({
      path: '/socket.io',
      transports: ['websocket'],
      auth: (cb) => cb({ token: opts.token, lastSeq: this.lastSeq }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    opts.onState('connecting');
    this.socket.on('connect', () => opts.onState('live'));
    this.socket.on('disconnect', (reason) => {
      opts.onState('reconnecting', reason);
      // A server-side disconnect is not retried by socket.io: retry it ourselves.
      if (reason === 'io server disconnect') window.setTimeout(() => this.socket.connect(), 1000);
    });
    this.socket.on('connect_error', (err) => {
      const code = (err as Error & { data?: { code?: string } }).data?.code;
      if (code === 'UNAUTHENTICATED' || code === 'TOKEN_EXPIRED') {
        opts.onState('refused', code);
        this.socket.disconnect();
        opts.onUnauthorized(code);
      } else opts.onState('reconnecting', err.message);
    });
    this.socket.on('error', (e) => {
      if (e.code === 'TOKEN_EXPIRED') opts.onUnauthorized(e.code);
    });
  }

  /** Wraps a handler: drops envelopes already seen and advances lastSeq. */
  fresh<T>(handler: (data: T, env: Envelope<T>) => void): (env: Envelope<T>) => void {
    return (env) => {
      if (env.seq <= this.lastSeq) return;
      this.lastSeq = env.seq;
      handler(env.data, env);
    };
  }

  close(): void {
    this.socket.disconnect();
  }
}

// ---------------------------------------------------------------- formatting

/** `mm:ss` or `h:mm:ss`; negative with a leading minus. */
export function fmtDuration(totalS: number): string {
  const neg = totalS < 0;
  let s = Math.round(Math.abs(totalS));
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  const ss = s - mm * 60;
  const body = hh > 0 ? `${hh}:${pad2(mm)}:${pad2(ss)}` : `${pad2(mm)}:${pad2(ss)}`;
  return neg ? `−${body}` : body;
}

export const pad2 = (n: number): string => String(n).padStart(2, '0');

export function fmtClock(ms: number): string {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

export const fmtLonLat = (p: LonLat): string => `${p[1].toFixed(5)}, ${p[0].toFixed(5)}`;

export const STATUS_LABEL: Record<UnitStatus, string> = {
  available: 'available',
  offered: 'offered',
  en_route: 'en route',
  on_scene: 'on scene',
  off_duty: 'off duty',
  out_of_service: 'out of service',
};

/** Short label of a catalogue type: the English half of a bilingual label, else the type. */
export function typeLabel(catalog: ReadonlyMap<string, IncidentType>, type: string): string {
  const t = catalog.get(type);
  if (!t?.label) return type;
  return t.label;
}

export const catalogMap = (catalog: readonly IncidentType[]): Map<string, IncidentType> =>
  new Map(catalog.map((t) => [t.type, t]));

/** Forgets the page's token and reloads to its login form, with a message to show there. */
export function logout(storageKey: string, message?: string): void {
  sessionStorage.removeItem(storageKey);
  if (message) sessionStorage.setItem(`${storageKey}.message`, message);
  window.location.replace(window.location.pathname);
}

/**
 * The page's token: from the URL or the session, else from the login form until `check`
 * accepts one (a message left by `logout` is shown on the form).
 */
export async function login(
  storageKey: string,
  check: (claims: TokenClaims | undefined) => string | undefined,
): Promise<string> {
  const token = takeToken(storageKey);
  const message = sessionStorage.getItem(`${storageKey}.message`) ?? undefined;
  sessionStorage.removeItem(`${storageKey}.message`);
  if (token && !check(decodeToken(token))) return token;
  return askToken(storageKey, check, message ?? (token ? check(decodeToken(token)) : undefined));
}
