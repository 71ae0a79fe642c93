// `npm run bench -- --soak`: ten minutes of mixed traffic on one wrangler dev with wrangler.toml's
// defaults, the queue consumer in the same isolate. What users meet together, not one job alone:
//   scroll  two phones scrolling distinct camera photos, each thumbnail asked twice (the second
//           from the cache, which makes its AVIF a candidate for the background re-encode)
//   view    the same photos at 1200w
//   herd    every 20 s, eight requests at once for one uncached variant
//   full    every 45 s, an iPhone HEIC viewed full size with Chrome's Accept (a newly pushed key)
//   job     every 60 s, an async job with three outputs, polled until it ends
// Reports per kind p50/p99, statuses, unanswered requests (no answer in 60 s), thumbnails over
// 10 s, 5xx other than 503 with Retry-After, the jobs' final states, and workerd's peak RSS over
// the run above its RSS after a forced GC (the local R2, Cache and Queue simulators included).
// `--soak-minutes=N` shortens it (a harness check); SOAK_LOG=FILE keeps the dev server's log (why
// a candidate failed: "no room for N MiB within M ms", a predicted CPU over the budget).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { fmtMB, fmtMs, table } from "./lib/stats.mjs";
import { forceGc, resetPeak, startWrangler, workerdMemory } from "../scripts/lib/wrangler.mjs";

const LIMIT = 128 * 2 ** 20;
const ANSWER_MS = 60_000;
const THUMBNAIL_MS = 10_000;
const CAPLIST = "caplist=avif,webp,jpg";
const CHROME_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

const percentile = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

export async function soakSection({ root, corpora, token, minutes, log }) {
  const persist = mkdtempSync(join(tmpdir(), "bench-soak-"));
  const worker = await startWrangler({ port: 8795, vars: { API_TOKENS: token }, persistTo: persist, inspectorPort: 9244 });
  const results = [];
  const jobIds = [];
  try {
    const auth = { Authorization: `Bearer ${token}` };
    const push = async (key, bytes) => {
      const res = await fetch(`${worker.base}/_api/objects/${key}`, { method: "PUT", body: bytes, headers: auth });
      if (res.status !== 201) throw new Error(`push ${key}: ${res.status} ${await res.text()}`);
    };
    const get = async (kind, path, headers = {}) => {
      const started = performance.now();
      const r = { kind, path, status: 0, ms: 0, retryAfter: null };
      try {
        const res = await fetch(`${worker.base}${path}`, { headers, signal: AbortSignal.timeout(ANSWER_MS) });
        await res.arrayBuffer();
        Object.assign(r, { status: res.status, retryAfter: res.headers.get("Retry-After") });
      } catch (e) {
        r.error = e.name === "TimeoutError" ? "unanswered" : e.message;
      }
      r.ms = performance.now() - started;
      results.push(r);
      return r;
    };

    // Ten distinct 12-24 MP photos: the corpus's four camera photos and crops and mirrors of them.
    const unsplash = (name) => readFileSync(join(corpora, "photos/unsplash", name));
    const base4 = ["rachel-hisko-rEM3cK8F1pk-unsplash.jpg", "fatih-kgqu_qs3B78-unsplash.jpg", "jon-tyson-FKkK1hnTe-Q-unsplash.jpg", "seondol-son-skcD9ONunJw-unsplash.jpg"].map(unsplash);
    const camera = (img) => img.jpeg({ quality: 92 }).toBuffer();
    const photos = [
      ...base4,
      await camera(sharp(base4[0]).extract({ left: 0, top: 0, width: 5000, height: 3500 })),
      await camera(sharp(base4[1]).flop()),
      await camera(sharp(base4[2]).flip()),
      await camera(sharp(base4[3]).flop()),
      await camera(sharp(base4[0]).resize(5200, 3467)),
      await camera(sharp(base4[1]).extract({ left: 0, top: 500, width: 3024, height: 3000 })),
    ];
    for (const [i, bytes] of photos.entries()) await push(`soak/p${i}.jpg`, bytes);
    const heicPath = join(corpora, "heic/pillow_heif-iphone/PUG1.HEIC");
    const heic = existsSync(heicPath) ? readFileSync(heicPath) : readFileSync(join(root, "samples/pug.heic"));
    // Codecs compiled once per isolate, on a small photo, before the baseline.
    await push("soak/small.jpg", await sharp(join(root, "samples/parrots.png")).jpeg().toBuffer());
    for (const f of ["webp", "avif", "jpg"]) await get("warm-up", `/soak/small_64_0.jpg?caplist=${f}`);
    results.length = 0;
    await forceGc(worker.inspectorPort);
    const baseRss = workerdMemory(worker.child.pid).rss;
    resetPeak(worker.child.pid);

    const end = Date.now() + minutes * 60_000;
    let n = 0;
    const phone = async (offset) => {
      for (let i = offset; Date.now() < end; i += 2) {
        const p = i % photos.length;
        // A width no earlier request asked for: every thumbnail is uncached the first time.
        const w = 200 + ((i * 7) % 280) + Math.floor(i / photos.length);
        const path = `/soak/p${p}_${w}_0.jpg?${CAPLIST}`;
        await get("scroll", path);
        await get("scroll (again)", path);
        if (i % 3 === 0) await get("view", `/soak/p${p}_${1200 - (i % 97)}_0.jpg?${CAPLIST}`);
      }
    };
    const every = async (ms, fn) => {
      while (Date.now() + ms < end) {
        await new Promise((r) => setTimeout(r, ms));
        await fn();
      }
    };
    const herd = () => {
      const w = 640 + n++;
      const p = n % photos.length;
      return Promise.all(Array.from({ length: 8 }, () => get("herd", `/soak/p${p}_${w}_0.jpg?${CAPLIST}`)));
    };
    const full = async () => {
      const key = `soak/heic${n++}`;
      await push(`${key}.heic`, heic);
      await get("full", `/${key}.heic`, { Accept: CHROME_ACCEPT });
    };
    const job = async () => {
      const id = `soak-${Date.now()}-${n++}`;
      const p = n % photos.length;
      const body = { msg_id: id, cmd: "transcode", input_files: [{ key: `soak/p${p}.jpg` }], output_files: [{ key: `soak/j${n}_800_0.webp` }, { key: `soak/j${n}_400_0.avif` }, { key: `soak/j${n}_1600_0.jpg` }] };
      const res = await fetch(`${worker.base}/_api/jobs`, { method: "POST", body: JSON.stringify(body), headers: { ...auth, "Content-Type": "application/json" }, signal: AbortSignal.timeout(ANSWER_MS) }).catch((e) => {
        results.push({ kind: "job post", path: id, status: 0, ms: ANSWER_MS, error: e.name === "TimeoutError" ? "unanswered" : e.message });
        return null;
      });
      if (!res) return;
      if (res.status >= 300) log(`  soak: job ${id} answered ${res.status} ${await res.text()}`);
      else jobIds.push(id);
    };
    log(`  soak: ${minutes} min of mixed traffic...`);
    await Promise.all([phone(0), phone(1), every(20_000, herd), every(45_000, full), every(60_000, job)]);

    // Every job must end: polled for up to two minutes after the traffic stops.
    const states = new Map();
    const outputs = new Map();
    const deadline = Date.now() + 120_000;
    for (;;) {
      for (const id of jobIds) {
        try {
          const res = await fetch(`${worker.base}/_api/jobs/${id}`, { headers: auth, signal: AbortSignal.timeout(ANSWER_MS) });
          const body = res.ok ? await res.json() : null;
          states.set(id, body ? body.state : `HTTP ${res.status}`);
          if (body) outputs.set(id, body.outputs ?? []);
        } catch (e) {
          // A status read with no answer is an unanswered request too.
          results.push({ kind: "job status", path: id, status: 0, ms: ANSWER_MS, error: e.name === "TimeoutError" ? "unanswered" : e.message });
          log(`  soak: GET /_api/jobs/${id}: ${e.name}; the dev server's log ends:\n${worker.log().split("\n").filter((l) => !/getaddrinfo|GetAddrInfo|Request.cf|^\s+at /.test(l)).slice(-15).join("\n")}`);
          states.set(id, "unknown");
        }
      }
      if ([...states.values()].every((s) => s === "done" || s === "failed") || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    const peak = workerdMemory(worker.child.pid).hwm - baseRss;
    // A job that did not end: what the dev server logged about the queue.
    if ([...states.values()].some((s) => s !== "done" && s !== "failed")) {
      const lines = worker.log().split("\n").filter((l) => /job|re-encode|queue/i.test(l));
      log(`  soak: jobs left unended; the dev server's queue lines (${lines.length}, last 25):\n${lines.slice(-25).join("\n")}`);
    }

    const kinds = [...new Set(results.map((r) => r.kind))];
    const statusesOf = (rs) => Object.entries(rs.reduce((m, r) => ({ ...m, [r.error ?? r.status]: (m[r.error ?? r.status] ?? 0) + 1 }), {})).map(([k, v]) => `${v} x ${k}`).join(", ");
    const rows = kinds.map((kind) => {
      const rs = results.filter((r) => r.kind === kind);
      const ms = rs.map((r) => r.ms);
      return [kind, String(rs.length), statusesOf(rs), fmtMs(percentile(ms, 50)), fmtMs(percentile(ms, 99)), fmtMs(Math.max(...ms))];
    });
    const unanswered = results.filter((r) => r.error === "unanswered").length;
    const failed = results.filter((r) => r.error && r.error !== "unanswered").length;
    const slowThumbs = results.filter((r) => r.kind.startsWith("scroll") && r.ms > THUMBNAIL_MS).length;
    const bad5xx = results.filter((r) => r.status >= 500 && !(r.status === 503 && r.retryAfter)).length;
    // Why outputs failed: code and message up to its parenthesised detail.
    const failures = {};
    for (const out of [...outputs.values()].flat()) {
      if (out.code === 0) continue;
      const why = `${out.code} ${String(out.message).split(" (")[0]}`;
      failures[why] = (failures[why] ?? 0) + 1;
    }
    const failedOutputs = Object.entries(failures).map(([k, v]) => `${v} x ${k}`).join("; ");
    const jobStates = Object.entries([...states.values()].reduce((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {})).map(([k, v]) => `${v} ${k}`).join(", ");
    const summary = [
      `${results.length} requests in ${minutes} min.`,
      `Unanswered within ${ANSWER_MS / 1000} s: ${unanswered}; connection errors: ${failed}.`,
      `Thumbnails (scroll) over ${THUMBNAIL_MS / 1000} s: ${slowThumbs}.`,
      `5xx other than 503 + Retry-After: ${bad5xx}.`,
      `Async jobs: ${jobIds.length} (${jobStates || "none"} at the end${failedOutputs ? `; failed outputs: ${failedOutputs}` : ""}).`,
      `Peak RSS above the post-GC baseline: ${fmtMB(peak)} (${peak <= LIMIT ? "within" : "OVER"} 128 MiB; includes the local R2, Cache and Queue simulators, which on Cloudflare are other services).`,
    ].join(" ");
    log(`  soak: ${summary}`);
    return table(
      `8. Soak: ${minutes} minute${minutes === 1 ? "" : "s"} of mixed traffic, wrangler.toml's defaults`,
      ["kind", "requests", "statuses", "p50", "p99", "slowest"],
      rows,
      `One wrangler dev with the [vars] of wrangler.toml, the queue consumer in the same isolate. scroll: two clients, each uncached thumbnail (200-480w) of ten 12-24 MP photos asked twice (again: from the cache, a re-encode candidate); view: 1200w; herd: 8 at once for one uncached 640w variant every 20 s; full: a newly pushed iPhone HEIC with Chrome's Accept every 45 s; async jobs every 60 s (800w WebP, 400w AVIF, 1600w JPEG). ${summary}`,
    );
  } finally {
    if (process.env.SOAK_LOG) writeFileSync(process.env.SOAK_LOG, worker.log());
    worker.stop();
    await new Promise((r) => setTimeout(r, 500));
    rmSync(persist, { recursive: true, force: true });
  }
}
