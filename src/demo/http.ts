// A small JSON client of the public HTTP API (/v1), as any outside client would write it:
// bearer token, JSON bodies, the error shape `{ error: { code, message } }` turned into an
// HttpError. Used by the demo driver; nothing here reaches into the engine.

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface HttpResult<T> {
  status: number;
  headers: Headers;
  body: T;
}

export type TokenSource = string | (() => string | Promise<string>);

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: TokenSource,
    private readonly timeoutMs = 10_000,
  ) {}

  private async bearer(): Promise<string> {
    return typeof this.token === 'string' ? this.token : await this.token();
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResult<T>> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: {
        authorization: `Bearer ${await this.bearer()}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new HttpError(
        res.status,
        err?.code ?? `HTTP_${res.status}`,
        `${method} ${path}: ${res.status} ${err?.code ?? ''} ${err?.message ?? text.slice(0, 200)}`.trim(),
      );
    }
    return { status: res.status, headers: res.headers, body: json as T };
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request<T>('GET', path)).body;
  }

  async post<T>(path: string, body: unknown, headers?: Record<string, string>): Promise<HttpResult<T>> {
    return this.request<T>('POST', path, body, headers);
  }

  async put<T>(path: string, body: unknown): Promise<T> {
    return (await this.request<T>('PUT', path, body)).body;
  }
}

/** Worth retrying with the same idempotency key: the network, a timeout, 5xx, 429. */
export function isTransient(err: unknown): boolean {
  if (err instanceof HttpError) return err.status >= 500 || err.status === 429;
  return true;
}
