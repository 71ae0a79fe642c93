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
import { isPrivateHost } from "../net";

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
