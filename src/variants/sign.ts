/**
 * @module variants/sign
 * URL signatures for the `signed` size policy: HMAC-SHA256 (RFC 2104) over the decoded path
 * (`/covers/a1_300_0.jpg`, with its leading slash and without the query), sent as `?sig=` in
 * unpadded base64url (RFC 4648 section 5). Runs in Workers and in Node 20 alike (WebCrypto), so
 * origins can import `signPath` or run `scripts/sign-url.mjs`.
 */

const encoder = new TextEncoder();

function importKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

function toBase64Url(bytes: ArrayBuffer): string {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]+$/.test(s)) return null;
  try {
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** The `sig` value for `path` (e.g. `/covers/a1_300_0.jpg`) under `secret`. */
export async function signPath(path: string, secret: string): Promise<string> {
  return toBase64Url(await crypto.subtle.sign("HMAC", await importKey(secret, "sign"), encoder.encode(path)));
}

/**
 * Whether `sig` is valid for `path` under any of `secrets` (several, for rotation). WebCrypto's
 * HMAC verify compares in constant time; every key is tried, so timing does not tell which.
 */
export function signatureVerifier(secrets: readonly string[]): (path: string, sig: string) => Promise<boolean> {
  const keys = Promise.all(secrets.map((s) => importKey(s, "verify")));
  return async (path, sig) => {
    const mac = fromBase64Url(sig);
    if (!mac) return false;
    let ok = false;
    for (const key of await keys) ok = (await crypto.subtle.verify("HMAC", key, mac, encoder.encode(path))) || ok;
    return ok;
  };
}
