// Maps every error the HTTP and socket layers can meet to one ApiError of the error table
// (src/server/errors.ts), so both transports refuse alike: ApiError as is, CoreError and
// StoreError by code, fastify's own errors (validation, body parsing, body size, rate limit)
// by their code or status, anything else as INTERNAL (and only that is a 5xx).

import { isCoreError } from '../core/errors.ts';
import { isStoreError } from '../store/store.ts';
import { ApiError, type ErrorCode, isApiError } from './errors.ts';

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** A readable JSON pointer-ish path: `body.location[1]`. */
function issuePath(context: string | undefined, issue: ValidationIssue): string {
  let path = context ?? '';
  for (const seg of (issue.instancePath ?? '').split('/').slice(1)) {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(s) ? `[${s}]` : path ? `.${s}` : s;
  }
  const extra = issue.params?.additionalProperties;
  if (issue.keyword === 'additionalProperties' && Array.isArray(extra) && extra.length > 0) {
    return `${path}${path ? '.' : ''}${String(extra[0])}`;
  }
  const missing = issue.params?.requiredProperties ?? issue.params?.missingProperty;
  if (issue.keyword === 'required' && missing !== undefined) {
    const name = Array.isArray(missing) ? missing[0] : missing;
    return `${path}${path ? '.' : ''}${String(name)}`;
  }
  return path;
}

/** Turns a list of schema issues (ajv or typebox) into an ApiError VALIDATION_FAILED. */
export function validationError(issues: readonly ValidationIssue[], context?: string): ApiError {
  // typebox reports an unknown property twice ("schema is false" and "additionalProperties").
  const useful = issues.filter((i) => !(i.keyword === 'boolean' && i.message === 'schema is false'));
  const list = (useful.length > 0 ? useful : issues).slice(0, 10).map((i) => ({
    path: issuePath(context, i),
    message:
      i.keyword === 'additionalProperties'
        ? 'unknown field'
        : i.keyword === 'boolean'
          ? 'not allowed here'
          : (i.message ?? 'invalid value').slice(0, 200),
  }));
  const first = list[0];
  const message = first ? `${first.path || context || 'request'}: ${first.message}` : undefined;
  return new ApiError('VALIDATION_FAILED', message, { errors: list });
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_BAD_URL: 'VALIDATION_FAILED',
  FST_ERR_ASYNC_CONSTRAINT: 'VALIDATION_FAILED',
  FST_ERR_NOT_FOUND: 'ROUTE_NOT_FOUND',
};

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'IDEMPOTENCY_MISMATCH',
  429: 'RATE_LIMITED',
  503: 'UNAVAILABLE',
};

/** Maps any thrown value to an ApiError of the table. */
export function toApiError(err: unknown): ApiError {
  if (isApiError(err)) return err;
  if (isCoreError(err)) {
    switch (err.code) {
      case 'UNKNOWN_INCIDENT_TYPE':
        return new ApiError('UNKNOWN_INCIDENT_TYPE', err.message, { field: err.field });
      case 'UNKNOWN_UNIT':
      case 'UNKNOWN_INCIDENT':
        return new ApiError('NOT_FOUND', err.message, { field: err.field });
      case 'INVALID_TRANSITION':
        return new ApiError('INVALID_TRANSITION', err.message, { field: err.field });
      case 'DUPLICATE_ID':
        return new ApiError('CONFLICT', err.message, { field: err.field });
      default:
        return new ApiError('INVALID_FIELD', err.message, { field: err.field });
    }
  }
  if (isStoreError(err)) {
    const d = err.details ?? {};
    const details: Record<string, unknown> = {};
    if (d.entity !== undefined) details.entity = d.entity;
    if (d.id !== undefined) details.id = d.id;
    if (d.reason !== undefined) details.reason = d.reason;
    const det = Object.keys(details).length > 0 ? details : undefined;
    switch (err.code) {
      case 'CONFLICT':
        if (d.reason === 'unit_busy') return new ApiError('UNIT_BUSY', err.message, det);
        if (d.reason === 'invalid_transition') return new ApiError('INVALID_TRANSITION', err.message, det);
        return new ApiError('CONFLICT', err.message, det);
      case 'NOT_FOUND':
        return new ApiError('NOT_FOUND', err.message, det);
      case 'IDEMPOTENCY_MISMATCH':
        return new ApiError('IDEMPOTENCY_MISMATCH', err.message, det);
      default:
        return new ApiError('INVALID_FIELD', err.message, det);
    }
  }
  if (err && typeof err === 'object') {
    const e = err as {
      code?: unknown;
      statusCode?: unknown;
      validation?: ValidationIssue[];
      validationContext?: string;
      message?: unknown;
    };
    if (Array.isArray(e.validation)) return validationError(e.validation, e.validationContext);
    const code = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
    if (code) return new ApiError(code);
    const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
    if (status !== undefined && status >= 400 && status < 500) {
      return new ApiError(BY_STATUS[status] ?? 'VALIDATION_FAILED');
    }
    if (status === 503) return new ApiError('UNAVAILABLE');
  }
  return new ApiError('INTERNAL');
}

/** The wire form of a refusal: `{ error: { code, message, details? } }`. */
export const errorBody = (e: ApiError) => ({ error: e.toJSON() });
