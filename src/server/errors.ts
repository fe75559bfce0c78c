// The one error table: every refusal the API or the socket layer gives has a stable code,
// a message and an HTTP status. Clients switch on `code`, never on the message.

export const ERRORS = {
  VALIDATION_FAILED: { status: 400, message: 'The request does not match the schema' },
  INVALID_FIELD: { status: 400, message: 'A field has an invalid value' },
  UNKNOWN_INCIDENT_TYPE: { status: 400, message: 'The incident type is not in the catalogue' },
  INVALID_TIME_WINDOW: {
    status: 400,
    message: 'The time window is inverted or empty (from must be before to)',
  },
  TIME_WINDOW_UNBOUNDED: {
    status: 400,
    message: 'The time window needs a start and may span at most the maximum period',
  },
  CALLBACK_NOT_HTTPS: { status: 400, message: 'A callback URL must use https' },
  CALLBACK_PRIVATE_ADDRESS: {
    status: 400,
    message: 'A callback URL must not point at a loopback, private or local address',
  },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be JSON' },
  MALFORMED_JSON: { status: 400, message: 'The request body is not valid JSON' },
  UNAUTHENTICATED: { status: 401, message: 'A valid bearer token is required' },
  TOKEN_EXPIRED: { status: 401, message: 'The token has expired' },
  FORBIDDEN: { status: 403, message: 'Your role may not do this' },
  NOT_FOUND: { status: 404, message: 'No such resource' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route' },
  CONFLICT: { status: 409, message: 'The resource changed; reload and retry' },
  UNIT_BUSY: { status: 409, message: 'The unit already has an active assignment' },
  INVALID_TRANSITION: { status: 409, message: 'That status change is not allowed now' },
  ALREADY_RESOLVED: { status: 409, message: 'The review flag was already resolved' },
  NOT_DEAD_LETTER: { status: 409, message: 'Only a delivery on the dead-letter list can be retried' },
  IDEMPOTENCY_MISMATCH: { status: 422, message: 'This idempotency key was used with a different request' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  BAD_ORIGIN: { status: 403, message: 'Origin not allowed' },
  UNKNOWN_EVENT: { status: 404, message: 'No such socket event' },
  MALFORMED_REQUEST: { status: 400, message: 'The request is not valid HTTP' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request did not arrive in time' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  UNAVAILABLE: { status: 503, message: 'The engine is starting or shutting down' },
  INTERNAL: { status: 500, message: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message ?? ERRORS[code].message);
    this.status = ERRORS[code].status;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export const isApiError = (e: unknown): e is ApiError => e instanceof ApiError;
