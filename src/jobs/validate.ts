/**
 * @module jobs/validate
 * Everything about a job is checked before it is accepted: a job that can only fail later
 * should fail now, with a 4xx the origin can act on.
 */
import type { Config } from "../config";
import type { Storage } from "../storage/r2";
import { AppError, badRequest } from "../errors";
import { formatSpec } from "../formats";
import { parseImageKey, validateKey, variantKey } from "../variants/key";
import type { JobRequest } from "./model";

const bad = (message: string) => badRequest("bad_job", message);
const MSG_ID = /^[A-Za-z0-9._:\/-]{1,200}$/;
/** Outputs per job: enough for every format and size of a cover, small enough for one consumer run. */
const MAX_OUTPUTS = 50;

const isInt = (v: unknown, min: number, max: number) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

export async function validateJob(body: unknown, config: Config, store: Storage): Promise<JobRequest> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("The body must be a JSON object.");
  const j = body as Record<string, unknown>;
  if (typeof j.msg_id !== "string" || !MSG_ID.test(j.msg_id)) throw bad("msg_id must be 1-200 characters of letters, digits and . _ : / -");
  if (j.cmd !== "transcode") throw bad('cmd must be "transcode".');
  if (j.priority !== undefined && !isInt(j.priority, 0, 1000)) throw bad("priority must be an integer between 0 and 1000.");
  if (j.notify_url !== undefined) {
    let url: URL | null = null;
    try {
      url = typeof j.notify_url === "string" && j.notify_url.length <= 2048 ? new URL(j.notify_url) : null;
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) throw bad("notify_url must be an http(s) URL of at most 2,048 characters.");
    if (url.username || url.password) throw bad("notify_url must not carry a user name or password.");
    if (!config.callbackPrivateHosts && isPrivateHost(url.hostname)) {
      throw bad("notify_url must name a public host: loopback, link-local, private and cloud-metadata addresses are refused.");
    }
  }
  const params = j.params ?? {};
  if (typeof params !== "object" || params === null || Array.isArray(params)) throw bad("params must be an object.");
  const { quality, speed } = params as Record<string, unknown>;
  if (quality !== undefined && !isInt(quality, 1, 100)) throw bad("params.quality must be an integer between 1 and 100.");
  if (speed !== undefined && !isInt(speed, 0, 10)) throw bad("params.speed must be an integer between 0 and 10.");

  const files = (v: unknown, name: string, max: number) => {
    if (!Array.isArray(v) || v.length === 0 || v.length > max) throw bad(`${name} must hold 1 to ${max} entries.`);
    return v.map((f) => {
      if (typeof f !== "object" || f === null || typeof (f as { key?: unknown }).key !== "string") throw bad(`every ${name} entry needs a string key.`);
      return { key: (f as { key: string }).key };
    });
  };
  // One input per transcode: every output is produced from it.
  const input_files = files(j.input_files, "input_files", 1);
  const output_files = files(j.output_files, "output_files", MAX_OUTPUTS);

  const input = input_files[0].key;
  validateKey(input);
  parseImageKey(input, Number.MAX_SAFE_INTEGER);
  const seen = new Set<string>();
  for (const { key } of output_files) {
    const out = parseImageKey(key, config.maxDimension);
    if (!formatSpec(out.format).canEncode) throw new AppError(422, "not_encodable", `${key}: ${out.format} cannot be produced here (no encoder).`);
    // Delivery looks a variant up by its one canonical name: `a_0100_0100.JPEG` would be a
    // second object no request ever finds (issue 30), so only the canonical spelling is taken.
    const canonical = variantKey(out.stem, out.size, out.format);
    if (key !== canonical) throw bad(`${key} is not spelled as delivery names it: use ${canonical}.`);
    if (key === input) throw bad(`${key} is the input itself.`);
    if (seen.has(key)) throw bad(`${key} is listed twice.`);
    seen.add(key);
  }
  if (!(await store.head(input))) throw new AppError(404, "input_not_found", `No object is stored under ${input}.`);
  return {
    msg_id: j.msg_id,
    ...(j.notify_url !== undefined ? { notify_url: j.notify_url as string } : {}),
    ...(j.priority !== undefined ? { priority: j.priority as number } : {}),
    cmd: "transcode",
    params: { ...(quality !== undefined ? { quality: quality as number } : {}), ...(speed !== undefined ? { speed: speed as number } : {}) },
    input_files,
    output_files,
  };
}

/**
 * Whether a callback host points inside a network rather than at an origin on the internet. The
 * WHATWG URL parser has already turned `2130706433`, `0x7f.1` and `[::ffff:127.0.0.1]` into
 * their canonical forms. IPv4: 0/8, 10/8, 100.64/10 (RFC 6598), 127/8, 169.254/16 (link-local,
 * cloud metadata), 172.16/12, 192.168/16, 198.18/15, 224/4 and above (RFC 6890). IPv6: ::, ::1,
 * fc00::/7, fe80::/10, and IPv4-mapped forms of the above. Names: localhost, and the .internal,
 * .local, .localhost suffixes metadata services and LANs use.
 */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 0 || a === 10 || a === 127 || a >= 224 || (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 198 && (b === 18 || b === 19));
  }
  if (host.startsWith("[")) {
    const v6 = host.slice(1, -1);
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
    if (mapped) return isPrivateHost(mapped[1]);
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
    if (hex) {
      const hi = parseInt(hex[1], 16);
      const lo = parseInt(hex[2], 16);
      return isPrivateHost(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
    }
    return v6 === "::" || v6 === "::1" || /^f[cd][0-9a-f]{0,2}:/.test(v6) || /^fe[89ab][0-9a-f]?:/.test(v6);
  }
  return host === "localhost" || /\.(localhost|local|internal)$/.test(host) || !host.includes(".");
}
