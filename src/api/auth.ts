/**
 * @module api/auth
 * Bearer-token check for `/_api/` (RFC 6750). Tokens are compared as SHA-256 digests with
 * `crypto.subtle.timingSafeEqual`, against every configured token without stopping early, so
 * neither the match position nor a token's length leaks through timing.
 */
import { AppError } from "../errors";

const encoder = new TextEncoder();
const digest = async (s: string) => crypto.subtle.digest("SHA-256", encoder.encode(s));

export function bearerAuth(tokens: readonly string[]): (authorization: string | undefined) => Promise<void> {
  const expected = Promise.all(tokens.map(digest));
  return async (authorization) => {
    const m = authorization ? /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(authorization) : null;
    if (!m) {
      throw new AppError(401, "unauthorized", "Send the API token as 'Authorization: Bearer <token>'.", {}, {
        "WWW-Authenticate": 'Bearer realm="edge-image-cdn"',
      });
    }
    const given = await digest(m[1]);
    let ok = false;
    for (const e of await expected) ok = crypto.subtle.timingSafeEqual(given, e) || ok;
    if (!ok) throw new AppError(403, "forbidden", "The API token is not valid.");
  };
}
