// Typed errors of the core. Every refusal names the offending field by path so that
// API layers can map it to a 4xx with a stable code, and replays can report it.

export type CoreErrorCode =
  | 'INVALID_FIELD'
  | 'UNKNOWN_INCIDENT_TYPE'
  | 'DUPLICATE_ID'
  | 'EMPTY_CATALOG'
  | 'UNKNOWN_UNIT'
  | 'UNKNOWN_INCIDENT'
  | 'INVALID_TRANSITION';

export class CoreError extends Error {
  override readonly name = 'CoreError';
  constructor(
    readonly code: CoreErrorCode,
    /** Path of the offending field, e.g. `units[3].capabilities` or `incidents[0].location[1]`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export const isCoreError = (e: unknown): e is CoreError => e instanceof CoreError;
