// StoreError → ApiError, and the small input checks of the engine's API.

import { isLonLat } from '../core/geo.ts';
import type { LonLat } from '../core/types.ts';
import { ApiError } from '../server/errors.ts';
import { isStoreError } from '../store/store.ts';

/** Maps a StoreError to the API's error table; anything else is rethrown unchanged. */
export function toApi(err: unknown): unknown {
  if (!isStoreError(err)) return err;
  switch (err.code) {
    case 'NOT_FOUND':
      return new ApiError('NOT_FOUND', err.message);
    case 'IDEMPOTENCY_MISMATCH':
      return new ApiError('IDEMPOTENCY_MISMATCH');
    case 'INVALID':
      return new ApiError(
        'INVALID_FIELD',
        err.message,
        err.details.field ? { field: err.details.field } : undefined,
      );
    case 'CONFLICT':
      if (err.details.reason === 'unit_busy') return new ApiError('UNIT_BUSY');
      if (err.details.reason === 'invalid_transition') return new ApiError('INVALID_TRANSITION', err.message);
      return new ApiError('CONFLICT', err.message);
  }
  return err;
}

export function invalidField(field: string, message: string): ApiError {
  return new ApiError('INVALID_FIELD', `${field}: ${message}`, { field });
}

export function checkLonLat(v: unknown, field: string): LonLat {
  if (!isLonLat(v))
    throw invalidField(field, 'must be [lon, lat] with lon in [-180, 180] and lat in [-90, 90]');
  return [v[0], v[1]];
}

export function checkText(v: unknown, field: string, max: number, required = false): string | undefined {
  if (v === undefined || v === null) {
    if (required) throw invalidField(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw invalidField(field, 'must be a string');
  const t = v.trim();
  if (required && t.length === 0) throw invalidField(field, 'must not be blank');
  if (t.length > max) throw invalidField(field, `must be at most ${max} characters`);
  return t;
}

/** ISO 8601 with a zone (Z or ±hh:mm) → epoch seconds. */
export function parseIsoTime(v: unknown, field: string): number {
  if (
    typeof v !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(v)
  ) {
    throw invalidField(field, 'must be an ISO 8601 time with an offset, e.g. 2026-03-02T08:15:00+08:00');
  }
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw invalidField(field, 'is not a valid time');
  return ms / 1000;
}
