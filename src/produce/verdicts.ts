/**
 * @module produce/verdicts
 * Every way a production can end, in one table: whether it is temporary (the answer with
 * nothing to serve is a 503 with Retry-After, never a 404 that mobile image libraries would
 * cache as final; a queued job is retried) or final (a 404 when every candidate ended so; a
 * job output fails with its code), and the stable code a job reports for it (origins switch on
 * it; README "Jobs").
 */

export const VERDICTS = {
  "no-source": { temporary: false, code: 1001 },
  "bad-source": { temporary: false, code: 1002 },
  "undecodable-source": { temporary: false, code: 1003 },
  "source-too-large": { temporary: false, code: 1004 },
  /** Predicted over the whole memory budget: no wait would ever make room. */
  "over-memory-budget": { temporary: false, code: 1005 },
  /** Over the request's CPU budget: queued for the background, served later. */
  "over-cpu-budget": { temporary: true, code: 1006 },
  "animated-source": { temporary: false, code: 1007 },
  "decode-error": { temporary: false, code: 1008 },
  "resize-error": { temporary: false, code: 1009 },
  "encode-error": { temporary: false, code: 1010 },
  "store-error": { temporary: true, code: 1011 },
  "output-exists": { temporary: false, code: 1012 },
  /** No room under the memory budget in time: other jobs held it. */
  "admission-timeout": { temporary: true, code: 1013 },
  /** Over the background CPU budget too: never produced. */
  "over-cpu-limit": { temporary: false, code: 1014 },
  /** The pull-through origin's file is not an image, or is over the upload limits (a 422, not a 404). */
  "origin-rejected": { temporary: false, code: 1015 },
} as const satisfies Record<string, { temporary: boolean; code: number }>;

export type VerdictName = keyof typeof VERDICTS;

/** Codes of failures no verdict names (a bug): reported, never confused with a known one. */
export const UNKNOWN_CODE = 1099;

/** Whether `verdict` says "not now" rather than "never". */
export const isTemporary = (verdict: string): boolean => (VERDICTS as Record<string, { temporary: boolean }>)[verdict]?.temporary ?? false;

/** The job output code of `verdict`. */
export const codeOf = (verdict: string): number => (VERDICTS as Record<string, { code: number }>)[verdict]?.code ?? UNKNOWN_CODE;

/** The temporary verdicts, for the chain and the response. */
export const TEMPORARY_VERDICTS: ReadonlySet<string> = new Set(Object.entries(VERDICTS).filter(([, v]) => v.temporary).map(([k]) => k));

/**
 * Whether a background job (queue consumer) retries after `verdict`: a temporary one, except
 * over the request's CPU budget, which is no reason there (it already has the background's).
 */
export const retriedInBackground = (verdict: string): boolean => isTemporary(verdict) && verdict !== "over-cpu-budget";
