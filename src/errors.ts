/**
 * @module errors
 * Errors that know their HTTP status and what may be said to a client. Anything else that is
 * thrown is an internal fault: it is logged whole and answered with a generic 500.
 */

export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 406 | 409 | 412 | 413 | 415 | 422 | 500 | 503,
    /** Stable, machine-readable code clients can switch on. */
    readonly code: string,
    /** Safe to show a client: never contains internal detail. */
    readonly publicMessage: string,
    /** Extra JSON fields for the body (e.g. the per-candidate verdicts of a 404). */
    readonly details: Record<string, unknown> = {},
    /** Headers the error response must carry too (e.g. Vary when Accept decided). */
    readonly headers: Record<string, string> = {},
  ) {
    super(publicMessage);
    this.name = "AppError";
  }
}

export const badRequest = (code: string, message: string) => new AppError(400, code, message);

/** The config could not be validated: an operator's mistake, so the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
