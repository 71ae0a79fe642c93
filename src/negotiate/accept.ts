/**
 * @module negotiate/accept
 * A parser for the Accept header (RFC 9110 12.5.1): media ranges with q-values, any case,
 * any spacing, several header lines (which Headers.get joins with ", ").
 */

export interface MediaRange {
  /** Lower-cased `type/subtype`, `type/*` or `*\/*`. */
  range: string;
  /** 0 to 1; q=0 means "not acceptable" (RFC 9110 12.4.2). */
  q: number;
}

// RFC 9110 12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

export function parseAccept(header: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const part of splitOutsideQuotes(header)) {
    const [rawRange, ...params] = part.split(";");
    const range = rawRange.trim().toLowerCase();
    if (!/^[^\s/]+\/[^\s/]+$/.test(range)) continue;
    let q = 1;
    let valid = true;
    for (const p of params) {
      const eq = p.indexOf("=");
      if (eq < 0) continue;
      if (p.slice(0, eq).trim().toLowerCase() !== "q") continue;
      const value = p.slice(eq + 1).trim();
      // A malformed weight makes the whole range unreadable; dropping it is safer than
      // guessing q=1 and serving something the client may have meant to refuse.
      if (!QVALUE.test(value)) valid = false;
      else q = Number(value);
    }
    if (valid) out.push({ range, q });
  }
  return out;
}

function splitOutsideQuotes(header: string): string[] {
  const parts: string[] = [];
  let cur = "";
  let quoted = false;
  for (const ch of header) {
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts.filter((p) => p.trim() !== "");
}

export interface RangeMatch {
  /** 3: the exact type is listed; 2: `image/*`; 1: `*\/*`. */
  specificity: 1 | 2 | 3;
  q: number;
}

/**
 * How the client weighs a format known by `mimes` (RFC 9110 12.5.1: the most specific
 * matching range wins), or undefined when no range matches it.
 */
export function matchRange(ranges: MediaRange[], mimes: readonly string[]): RangeMatch | undefined {
  const type = mimes[0].split("/")[0];
  let best: RangeMatch | undefined;
  for (const { range, q } of ranges) {
    const specificity = mimes.includes(range) ? 3 : range === `${type}/*` ? 2 : range === "*/*" ? 1 : 0;
    if (specificity === 0) continue;
    // Among equally specific ranges (a type listed twice), the highest weight wins.
    if (!best || specificity > best.specificity || (specificity === best.specificity && q > best.q)) {
      best = { specificity, q };
    }
  }
  return best;
}
