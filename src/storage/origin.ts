/**
 * @module storage/origin
 * The pull-through origin (`ORIGIN_URL`): an original missing from R2 is fetched from the
 * origin, checked exactly as a push is (storage/accept: byte limit, magic bytes, header
 * dimensions and frames), and stored in R2 under the same key with the origin's validators, so
 * every later variant reads it from R2 and the origin is asked once per image. A decorator over
 * the R2 store: only `findOriginal` changes, so the chain, production and jobs know nothing of it.
 *
 * What the origin's answers become (docs/api.md "Pull-through origin"):
 * - 2xx: the image, checked and stored; not an image or over the limits: SourceRejected (a 422).
 * - 404, 410, and 401/403 (S3 answers 403 for a missing key to readers without ListBucket):
 *   not there; the next extension of ORIGIN_EXTENSIONS is tried, and with none left, no source (a 404).
 * - 5xx, 429, a network error or ORIGIN_TIMEOUT_MS passed: thrown, so the chain answers 503 with
 *   Retry-After; never a 404 that a phone's image library would cache.
 * - Redirects are followed (up to 3) only while they stay under ORIGIN_URL; any other is refused.
 */
import type { OriginConfig } from "../config";
import { AppError } from "../errors";
import { formatSpec } from "../formats";
import { parseImageKey } from "../variants/key";
import { checkImage, readLimited, type AcceptLimits } from "./accept";
import { SourceRejected, type ReadRoom, type Storage, type StoredImage } from "./r2";

/** The origin could not answer now (down, overloaded, slow): temporary. */
export class OriginUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OriginUnavailable";
  }
}

const MAX_REDIRECTS = 3;
/** How often a request that found another's pull of the same stem in flight looks again. */
const FOLLOW_POLL_MS = 20;

type Pull = { done: boolean; found?: boolean; error?: unknown };

/**
 * Pulls in flight in this isolate, by origin URL of the stem: concurrent misses of one image
 * make one fetch. The others wait for it by polling (a request must not await a promise only
 * another request settles: the runtime cancels it as hung), then read what it stored from R2.
 */
const pulls = new Map<string, Pull>();

/** `<base><key>`, each path segment percent-encoded, and proved to stay under the base. */
export function originUrl(base: string, key: string): string {
  const url = new URL(key.split("/").map(encodeURIComponent).join("/"), base);
  // parseImageKey already refuses '.', '..', empty segments and a leading '/'; this is the
  // guarantee itself, whatever the key: nothing outside ORIGIN_URL's path is ever fetched.
  if (!url.href.startsWith(base) || url.search || url.hash) throw new SourceRejected(`the key ${key} leaves the origin's path`);
  return url.href;
}

export function pullThrough(store: Storage, origin: OriginConfig, limits: AcceptLimits, fetcher: typeof fetch = (i, o) => fetch(i, o)): Storage {
  const fetchOnce = async (key: string, room: ReadRoom | undefined): Promise<{ bytes: Uint8Array; etag: string | null; lastModified: string | null } | null> => {
    let url = originUrl(origin.base, key);
    const signal = AbortSignal.timeout(origin.timeoutMs);
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await fetcher(url, { redirect: "manual", signal, headers: { Accept: "image/*,*/*;q=0.8", "User-Agent": "edge-image-cdn pull-through" } });
      } catch (e) {
        throw new OriginUnavailable(`the origin did not answer ${url} within ${origin.timeoutMs} ms: ${(e as Error).message}`);
      }
      if (res.status >= 300 && res.status < 400 && res.headers.has("Location")) {
        await res.body?.cancel();
        const next = new URL(res.headers.get("Location")!, url).href;
        if (hop >= MAX_REDIRECTS || !next.startsWith(origin.base)) throw new SourceRejected(`the origin redirected ${url} outside ORIGIN_URL (or more than ${MAX_REDIRECTS} times)`);
        url = next;
        continue;
      }
      if ([401, 403, 404, 410].includes(res.status)) {
        await res.body?.cancel();
        return null;
      }
      if (res.status === 429 || res.status >= 500 || !res.ok) {
        await res.body?.cancel();
        // Another 4xx would be a 404 for good on a misconfiguration: a 503 shows up in alerts.
        throw new OriginUnavailable(`the origin answered ${res.status} for ${url}`);
      }
      const declared = res.headers.get("Content-Length");
      // Room to hold the body whole, taken before it is read (produce/admission `reserveRead`).
      const holds = declared !== null && Number(declared) <= limits.maxUploadBytes ? Number(declared) : limits.maxUploadBytes;
      if (room && !room.now(holds)) {
        try {
          await room.wait(holds);
        } catch (e) {
          await res.body?.cancel();
          throw e;
        }
      }
      try {
        const bytes = await readLimited(res.body, declared, limits.maxUploadBytes);
        return { bytes, etag: res.headers.get("ETag"), lastModified: res.headers.get("Last-Modified") };
      } catch (e) {
        if (e instanceof AppError) throw new SourceRejected(`the origin's ${key}: ${e.publicMessage}`);
        throw new OriginUnavailable(`reading ${url} from the origin failed: ${(e as Error).message}`);
      }
    }
  };

  /** The first of the stem's names the origin has, checked and stored in R2. */
  const pull = async (stem: string, preferredKey: string, room: ReadRoom | undefined): Promise<StoredImage | null> => {
    const preferredExtension = preferredKey.slice(stem.length + 1);
    const extensions = [preferredExtension, ...origin.extensions.filter((e) => e !== preferredExtension)];
    for (const extension of extensions) {
      const key = `${stem}.${extension}`;
      const got = await fetchOnce(key, room);
      if (!got) continue;
      let header;
      try {
        header = checkImage(got.bytes, parseImageKey(key, Number.MAX_SAFE_INTEGER), limits);
      } catch (e) {
        if (e instanceof AppError) throw new SourceRejected(`the origin's ${key}: ${e.publicMessage}`);
        throw e;
      }
      const customMetadata: Record<string, string> = { format: header.format, width: String(header.width), height: String(header.height), producedBy: "origin", pulledAt: new Date().toISOString() };
      // The origin's validators: what a later revalidation would send (docs/api.md).
      if (got.etag) customMetadata.originEtag = got.etag;
      if (got.lastModified) customMetadata.originLastModified = got.lastModified;
      const bytes = got.bytes.buffer as ArrayBuffer;
      // Never over a push that landed meanwhile: the pushed object wins, and is what is served.
      const stored = await store.put(key, bytes, { contentType: formatSpec(header.format).mime, customMetadata, onlyIf: new Headers({ "If-None-Match": "*" }) });
      if (!stored) return store.findOriginal(stem, preferredKey, room);
      return { key, bytes, etag: stored.etag, metadata: customMetadata };
    }
    return null;
  };

  return {
    ...store,
    async findOriginal(stem, preferredKey, room) {
      const found = await store.findOriginal(stem, preferredKey, room);
      if (found) return found;
      const id = originUrl(origin.base, stem);
      const other = pulls.get(id);
      if (other) {
        // A leader cancelled by the runtime never finishes its entry: past the origin's own
        // timeout (and its redirects), this request pulls for itself.
        const giveUp = Date.now() + origin.timeoutMs * 2;
        while (!other.done && Date.now() < giveUp) await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
        if (other.done) {
          if (other.error !== undefined) throw other.error;
          return other.found ? store.findOriginal(stem, preferredKey, room) : null;
        }
      }
      const entry: Pull = { done: false };
      if (!other) pulls.set(id, entry);
      try {
        const image = await pull(stem, preferredKey, room);
        entry.found = image !== null;
        return image;
      } catch (e) {
        entry.error = e;
        throw e;
      } finally {
        entry.done = true;
        if (pulls.get(id) === entry) pulls.delete(id);
      }
    },
  };
}
