/**
 * @module api/routes
 * The origin push API under `/_api/`: originals and pre-produced variants into R2, validated
 * from their bytes, and the edge-cache entries they make stale purged.
 */
import { Hono } from "hono";
import type { Config } from "../config";
import { AppError, badRequest } from "../errors";
import { formatSpec } from "../formats";
import { HEADER_PROBE_BYTES, readHeader } from "../headers";
import type { VariantCache } from "../storage/cache";
import type { ObjectInfo, Storage } from "../storage/r2";
import { parseImageKey, validateKey, variantKey, type ImageRequestKey } from "../variants/key";
import { publicView } from "../jobs/model";
import type { JobService } from "../jobs/service";
import { validateJob } from "../jobs/validate";
import { checkImage, readLimited } from "../storage/accept";
import { bearerAuth } from "./auth";
import { purgeStale } from "./purge";

export interface ApiDeps {
  config: Config;
  /** Every R2 access goes through it (storage/r2). */
  store: Storage;
  cache: VariantCache;
  jobs: JobService;
}

/**
 * The object key after `prefix`, cut from the percent-decoded path: routing matched the decoded
 * path, so cutting the raw one by the decoded prefix's length would shift the key
 * (`/%5f%61%70%69/objects/a.jpg` must not store `objects/a.jpg`).
 */
function keyAfter(url: string, prefix: string): string {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    throw badRequest("bad_key", "The key has malformed percent-encoding.");
  }
  if (!path.startsWith(prefix)) throw badRequest("bad_key", `The path must start with ${prefix}.`);
  return path.slice(prefix.length);
}

/** `_16383_16383`: the longest size suffix a variant of a full-size key can add (WebP's largest side). */
const LONGEST_SIZE_SUFFIX = 12;

/** Keys the API accepts: the delivery naming, any size, a known extension. */
function objectKey(key: string): ImageRequestKey {
  return checkedLength(parseImageKey(key, Number.MAX_SAFE_INTEGER), key);
}

/**
 * A key a push may store under. A variant is looked up by its one canonical name
 * (variants/key `variantKey`): `a_0100_0100.JPEG` would be a second object no request finds.
 * An original keeps its own spelling (cameras write `IMG_0001.JPG`).
 */
function pushKey(key: string): ImageRequestKey {
  const parsed = objectKey(key);
  const canonical = variantKey(parsed.stem, parsed.size, parsed.format);
  if (parsed.size && key !== canonical) throw badRequest("bad_key", `A variant is stored under the name delivery looks for: use ${canonical}, not ${key}.`);
  return parsed;
}

function checkedLength(parsed: ImageRequestKey, key: string): ImageRequestKey {
  // R2 keys end at 1,024 bytes: a full-size key must leave room for its variants' names.
  if (!parsed.size && new TextEncoder().encode(key).length > 1024 - LONGEST_SIZE_SUFFIX) {
    throw badRequest("bad_key", `A full-size image key may be at most ${1024 - LONGEST_SIZE_SUFFIX} bytes, so that its _W_H variants fit R2's 1,024.`);
  }
  return parsed;
}


/**
 * The image inside a `multipart/form-data` body (RFC 7578), what `curl -F file=@photo.jpg`
 * sends: exactly one file part, whatever its field name. The whole body was already read
 * under the upload limit, so the parse is bounded by it.
 */
async function imageFromMultipart(bytes: Uint8Array, contentType: string): Promise<Uint8Array> {
  const hint = "Send the image as the body (curl --data-binary @photo.jpg), or as one file part (curl -F file=@photo.jpg).";
  let form: FormData;
  try {
    form = await new Response(bytes, { headers: { "Content-Type": contentType } }).formData();
  } catch {
    throw badRequest("bad_multipart", `The multipart/form-data body could not be parsed. ${hint}`);
  }
  const files = [...form.values()].filter((v): v is File => typeof v !== "string");
  if (files.length !== 1) throw badRequest("bad_multipart", `The multipart/form-data body has ${files.length} file parts; exactly one is needed. ${hint}`);
  const image = new Uint8Array(await files[0].arrayBuffer());
  if (image.byteLength === 0) throw badRequest("empty_body", "The file part is empty: send the image bytes.");
  return image;
}


/**
 * `*` or a list of entity-tags (RFC 9110 8.8.3: `W/`? DQUOTE *etagc DQUOTE, etagc being
 * %x21 / %x23-7E / obs-text).
 */
const VALIDATOR = /^\s*(\*|(W\/)?"[\x21\x23-\x7e\x80-\xff]*"(\s*,\s*(W\/)?"[\x21\x23-\x7e\x80-\xff]*")*)\s*$/;

/** R2 conditional put from the client's preconditions (RFC 9110 13.1.1, 13.1.2); a malformed one is a 400. */
function preconditions(req: Request): Headers | undefined {
  const h = new Headers();
  for (const name of ["If-Match", "If-None-Match"]) {
    const v = req.headers.get(name);
    if (v === null) continue;
    if (!VALIDATOR.test(v)) throw badRequest("bad_precondition", `${name} must be * or a list of quoted entity-tags, e.g. "abc123".`);
    h.set(name, v);
  }
  return [...h.keys()].length ? h : undefined;
}

/**
 * Whether `conditions` hold for an object stored with `etag` (null: none stored). If-Match
 * compares strongly, If-None-Match weakly (RFC 9110 13.1.1, 13.1.2, 8.8.3.2).
 */
function preconditionsHold(conditions: Headers, etag: string | null): boolean {
  const tags = (v: string) => v.split(",").map((t) => t.trim());
  const opaque = (t: string) => t.replace(/^W\//, "");
  const ifMatch = conditions.get("If-Match");
  if (ifMatch !== null) {
    if (etag === null) return false;
    if (ifMatch.trim() !== "*" && !tags(ifMatch).some((t) => !t.startsWith("W/") && !etag.startsWith("W/") && t === etag)) return false;
  }
  const ifNoneMatch = conditions.get("If-None-Match");
  if (ifNoneMatch !== null && etag !== null) {
    if (ifNoneMatch.trim() === "*" || tags(ifNoneMatch).some((t) => opaque(t) === opaque(etag))) return false;
  }
  return true;
}

async function describe(store: Storage, obj: ObjectInfo) {
  const key = objectKey(obj.key);
  const meta = obj.customMetadata ?? {};
  let width = Number(meta.width) || null;
  let height = Number(meta.height) || null;
  if (!width || !height) {
    // Objects stored without our metadata (e.g. `wrangler r2 object put`): read their header.
    const head = await store.readStart(obj.key, HEADER_PROBE_BYTES);
    try {
      const header = head ? readHeader(head) : null;
      width = header?.width ?? null;
      height = header?.height ?? null;
    } catch {
      width = height = null;
    }
  }
  return {
    key: obj.key,
    format: key.format,
    size: key.size,
    width,
    height,
    bytes: obj.bytes,
    etag: obj.etag,
    contentType: obj.contentType ?? formatSpec(key.format).mime,
    uploaded: obj.uploaded.toISOString(),
    producedBy: meta.producedBy ?? "origin",
    ...(meta.focalPoint ? { focalPoint: meta.focalPoint } : {}),
  };
}

export function apiRoutes({ config, store, cache, jobs }: ApiDeps): Hono {
  const api = new Hono();
  const authenticate = bearerAuth(config.apiTokens);

  api.use("*", async (c, next) => {
    await authenticate(c.req.header("Authorization"));
    await next();
  });

  api.put("/objects/*", async (c) => {
    const key = pushKey(keyAfter(c.req.url, "/_api/objects/"));
    const raw = await readLimited(c.req.raw.body, c.req.header("Content-Length") ?? null, config.maxUploadBytes);
    const contentType = c.req.header("Content-Type") ?? "";
    const bytes = /^multipart\/form-data\s*;/i.test(contentType) ? await imageFromMultipart(raw, contentType) : raw;
    const header = checkImage(bytes, key, config);
    if (!key.size) {
      // One original per stem and format: variants are named by the stem alone, so `a.JPG`
      // beside `a.jpg` would make every variant of `a` ambiguous (issue 30).
      const other = (await store.listStem(key.stem)).find((o) => !o.size && o.format === key.format && o.key !== key.key);
      if (other) throw new AppError(409, "spelling_conflict", `${other.key} already holds this stem's ${key.format} original; replace it under that name, or delete it first.`);
    }
    const customMetadata: Record<string, string> = { format: header.format, width: String(header.width), height: String(header.height), producedBy: "origin" };
    const focal = c.req.header("X-Image-Focal-Point");
    if (focal !== undefined) {
      // Where this image's cover crops are centred by default (docs/api.md "Options": gravity).
      const m = /^\s*(0(?:\.\d+)?|1(?:\.0+)?)\s*,\s*(0(?:\.\d+)?|1(?:\.0+)?)\s*$/.exec(focal);
      if (!m || key.size) throw badRequest("bad_focal_point", "X-Image-Focal-Point is two fractions x,y between 0 and 1 (e.g. 0.3,0.6), sent with an original.");
      customMetadata.focalPoint = `${Number(m[1]).toFixed(2)},${Number(m[2]).toFixed(2)}`;
    }
    const stored = await store.put(key.key, bytes, {
      contentType: formatSpec(key.format).mime,
      customMetadata,
      onlyIf: preconditions(c.req.raw),
    });
    // R2 answers a failed precondition with null and writes nothing.
    if (!stored) throw new AppError(412, "precondition_failed", "The stored object does not match If-Match / If-None-Match.");
    await purgeStale(store, cache, new URL(c.req.url).origin, config.cacheGeneration, key);
    c.header("ETag", stored.etag);
    return c.json(
      { key: key.key, format: header.format, width: header.width, height: header.height, bytes: bytes.byteLength, etag: stored.etag },
      201,
    );
  });

  api.get("/objects/*", async (c) => {
    const key = objectKey(keyAfter(c.req.url, "/_api/objects/"));
    const obj = await store.head(key.key);
    if (!obj) throw new AppError(404, "not_found", `No object is stored under ${key.key}.`);
    return c.json(await describe(store, obj));
  });

  api.delete("/objects/*", async (c) => {
    const key = objectKey(keyAfter(c.req.url, "/_api/objects/"));
    const conditions = preconditions(c.req.raw);
    if (conditions) {
      // R2's delete takes no condition: the stored ETag is read and compared first, so an
      // origin's stale DELETE (If-Match: the version it knew) never removes a newer upload. A PUT
      // landing between the read and the delete (milliseconds) is not covered.
      const stored = await store.head(key.key);
      if (!preconditionsHold(conditions, stored?.etag ?? null)) throw new AppError(412, "precondition_failed", "The stored object does not match If-Match / If-None-Match; nothing was deleted.");
    }
    await store.delete([key.key]);
    await purgeStale(store, cache, new URL(c.req.url).origin, config.cacheGeneration, key);
    return c.body(null, 204);
  });

  api.get("/images/*", async (c) => {
    const stem = keyAfter(c.req.url, "/_api/images/");
    // A stem is a key without its extension: validate it as one with a placeholder extension.
    // An empty stem would list every object, internal ones included.
    if (!stem) throw badRequest("bad_key", "Name a stem: GET /_api/images/<stem>.");
    validateKey(`${stem}.jpg`);
    const objects = await store.listStem(stem);
    return c.json({ stem, objects: await Promise.all(objects.map((o) => describe(store, o))) });
  });

  api.post("/jobs", async (c) => {
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(await readLimited(c.req.raw.body, c.req.header("Content-Length") ?? null, 256 * 1024)));
    } catch (e) {
      if (e instanceof AppError && e.code === "payload_too_large") throw e;
      throw badRequest("bad_job", "The body must be a JSON object.");
    }
    const request = await validateJob(body, config, store);
    const { created, state } = await jobs.submit(request, new URL(c.req.url).origin);
    // The same msg_id again produces nothing new: it answers with the job as it stands.
    return created ? c.json({ msg_id: request.msg_id, success: true }, 202) : c.json(publicView(state), 200);
  });

  api.get("/jobs/*", async (c) => {
    const msgId = keyAfter(c.req.url, "/_api/jobs/");
    const state = await jobs.get(msgId);
    if (!state) throw new AppError(404, "job_not_found", `No job has msg_id ${msgId}.`);
    return c.json(publicView(state));
  });

  api.all("*", () => {
    throw new AppError(404, "not_found", "No such API endpoint.");
  });
  return api;
}
