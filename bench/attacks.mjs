// `npm run bench -- --only=attacks` (section 9): issue 30's hostile inputs against one wrangler
// dev with wrangler.toml's defaults, measured from outside: workerd's peak RSS over each attack
// (VmHWM reset just before) above its RSS after a forced GC, and the CPU seconds workerd spent
// (utime + stime from /proc, the local R2, Cache and Queue simulators included). The upload
// limits are raised to their maximum so that shapes the push API now refuses are stored anyway
// and the delivery path meets them too (as objects stored before the limits, or around the API).
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { constantGif } from "./lib/gif.mjs";
import { pngChunk } from "../scripts/lib/png-chunk.mjs";
import { fmtMB, fmtMs, table } from "./lib/stats.mjs";
import { forceGc, resetPeak, startWrangler, workerdMemory, workerdPids } from "../scripts/lib/wrangler.mjs";

/** One request of an attack: issue 30's bound. Many at once: the memory budget (MEMORY_BUDGET_MB). */
const GOAL = 64 * 2 ** 20;
const BUDGET = 112 * 2 ** 20;
const CHROME_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const CLK_TCK = 100;

/** CPU seconds (user + system) of the workerd processes under `rootPid`. */
function workerdCpu(rootPid) {
  let ticks = 0;
  for (const pid of workerdPids(rootPid)) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").slice(readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return ticks / CLK_TCK;
}

/** A 1x1 RGBA PNG whose one IDAT inflates to its row and then `tail` bytes of zeros. */
function zlibTailPng(tail) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const zeros = Buffer.alloc(Math.min(tail, 2 ** 28));
  const raw = Buffer.concat([Buffer.from([0, 10, 200, 30, 255]), ...Array.from({ length: Math.ceil(tail / zeros.length) }, () => zeros)]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk("IHDR", ihdr), pngChunk("IDAT", deflateSync(raw, { level: 9 })), pngChunk("IEND", Buffer.alloc(0))]);
}

/** `jpeg` (progressive) with its last scan repeated until it has `scans` scans. */
function withScans(jpeg, scans) {
  const sos = [];
  for (let i = 2; i + 1 < jpeg.length; i++) if (jpeg[i] === 0xff && jpeg[i + 1] === 0xda) sos.push(i);
  const last = jpeg.subarray(sos.at(-1), jpeg.length - 2);
  return Buffer.concat([jpeg.subarray(0, jpeg.length - 2), ...Array.from({ length: scans - sos.length }, () => last), Buffer.from([0xff, 0xd9])]);
}

export async function attacksSection({ root, corpora, token, smoke, log }) {
  // Every file is made before the worker starts: deflating 1 GiB blocks this process for
  // seconds, long enough for the dev server to drop a kept-alive connection under a request.
  const photo = (name) => readFileSync(smoke ? join(root, "samples/street.jpg") : join(corpora, "photos/unsplash", name));
  const n = (k) => (smoke ? 3 : k);
  const tail = smoke ? 2 ** 26 : 2 ** 30;
  const side = smoke ? 512 : 4096;
  const progressive = await sharp({ create: { width: side, height: side, channels: 3, background: { r: 90, g: 140, b: 60 } } })
    .jpeg({ quality: 80, progressive: true })
    .toBuffer();
  const p24 = photo("rachel-hisko-rEM3cK8F1pk-unsplash.jpg");
  const p12 = photo("fatih-kgqu_qs3B78-unsplash.jpg");
  // The as-is case was a 24.6 MB original: the 24 MP photo at quality 100, 4:4:4.
  const large = await sharp(p24).jpeg({ quality: 100, chromaSubsampling: "4:4:4" }).toBuffer();
  const attacks = [
    { name: `PNG 1x1, IDAT inflating to ${tail / 2 ** 20} MiB of zeros -> WebP`, file: zlibTailPng(tail), key: "a/zlib.png", paths: ["/a/zlib.png?caplist=webp"] },
    ...(smoke ? [400] : [4000, 14000]).map((h) => ({ name: `GIF 64x64 screen, one 65535x${h} frame -> full size`, file: constantGif(64, 64, 65535, h), key: `a/frame${h}.gif`, paths: [`/a/frame${h}.gif?caplist=webp`] })),
    { name: `progressive JPEG ${side}x${side}, 1,200 scans -> 1200w`, file: withScans(progressive, 1200), key: "a/scans1200.jpg", paths: ["/a/scans1200_1200_0.jpg?caplist=jpg"] },
    { name: `progressive JPEG ${side}x${side}, 100 scans (the cap) -> 1200w`, file: withScans(progressive, 100), key: "a/scans100.jpg", paths: ["/a/scans100_1200_0.jpg?caplist=jpg"] },
    // The same picture with libjpeg's own progression: what the decode costs without extra scans.
    { name: `progressive JPEG ${side}x${side}, 10 scans (libjpeg's default) -> 1200w`, file: progressive, key: "a/scans10.jpg", paths: ["/a/scans10_1200_0.jpg?caplist=jpg"], baseline: true },
    { name: `${n(30)} concurrent as-is reads of a 24 MP original of ${(large.length / 2 ** 20).toFixed(1)} MiB`, file: large, key: "a/p24.jpg", paths: Array.from({ length: n(30) }, () => "/a/p24.jpg?caplist=jpg") },
    { name: `${n(60)} concurrent sizes of a 12 MP JPEG -> WebP`, file: p12, key: "a/p12.jpg", paths: Array.from({ length: n(60) }, (_, i) => `/a/p12_${300 + i}_0.jpg?caplist=webp`) },
    { name: `${n(40)} concurrent sizes of a 24 MP JPEG, Chrome's Accept`, file: p24, key: "a/p24b.jpg", paths: Array.from({ length: n(40) }, (_, i) => `/a/p24b_${400 + i}_0.jpg`), headers: { Accept: CHROME_ACCEPT } },
  ];
  const persist = mkdtempSync(join(tmpdir(), "bench-attacks-"));
  const worker = await startWrangler({ port: 8789, vars: { API_TOKENS: token, MAX_UPLOAD_PIXELS: "1000000000", MAX_UPLOAD_DIMENSION: "65535", PEAK_MEMORY_HEADER: "on" }, persistTo: persist, inspectorPort: 9248, direct: true });
  const rows = [];
  try {
    const auth = { Authorization: `Bearer ${token}` };
    const push = async (key, bytes) => {
      const res = await fetch(`${worker.base}/_api/objects/${key}`, { method: "PUT", body: bytes, headers: auth });
      const body = await res.text();
      return { status: res.status, error: res.status === 201 ? "" : (JSON.parse(body).error ?? "") };
    };
    await push("w/small.jpg", await sharp(join(root, "samples/parrots.png")).jpeg().toBuffer());
    for (const f of ["webp", "avif", "jpg", "png"]) await (await fetch(`${worker.base}/w/small_64_0.jpg?caplist=${f}`)).arrayBuffer();

    const attack = async (name, file, key, paths, headers = {}, baseline = false) => {
      const pushed = await push(key, file);
      // Attacks 8 s apart: the last one's kept-alive connections idle, not reused mid-close.
      await new Promise((r) => setTimeout(r, 8000));
      await forceGc(worker.inspectorPort);
      const base = workerdMemory(worker.child.pid).rss;
      resetPeak(worker.child.pid);
      const cpu0 = workerdCpu(worker.child.pid);
      const results = await Promise.all(
        paths.map(async (path) => {
          const started = performance.now();
          try {
            const res = await fetch(`${worker.base}${path}`, { headers, signal: AbortSignal.timeout(120_000) });
            await res.arrayBuffer();
            return { status: res.status, ms: performance.now() - started, peak: Number(res.headers.get("X-Image-Peak-Memory") ?? 0) };
          } catch (e) {
            return { status: e.name === "TimeoutError" ? "unanswered" : `${e.message} (${e.cause?.code ?? e.cause?.message ?? "?"})`, ms: performance.now() - started };
          }
        }),
      );
      const cpu = workerdCpu(worker.child.pid) - cpu0;
      const peak = workerdMemory(worker.child.pid).hwm - base;
      const statuses = Object.entries(results.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {})).map(([k, v]) => `${v} x ${k}`).join(", ");
      const slowest = Math.max(...results.map((r) => r.ms));
      const jobPeak = Math.max(0, ...results.map((r) => r.peak ?? 0));
      const goal = paths.length > 1 ? BUDGET : GOAL;
      const verdict = baseline ? "(baseline)" : `${peak <= goal ? "yes" : "NO"} (${fmtMB(goal)})`;
      rows.push([name, `${(file.length / 1024).toFixed(0)} KiB`, pushed.status === 201 ? "201" : `${pushed.status} ${pushed.error}`, statuses, fmtMB(peak), verdict, jobPeak ? fmtMB(jobPeak) : "-", `${cpu.toFixed(1)} s`, fmtMs(slowest)]);
      log(`  attack ${name}: push ${pushed.status}, ${statuses}, peak RSS ${fmtMB(peak)}, CPU ${cpu.toFixed(1)} s`);
    };

    for (const a of attacks) await attack(a.name, a.file, a.key, a.paths, a.headers, a.baseline);
  } finally {
    worker.stop();
  }
  return table(
    "9. Hostile input (issue 30), measured from outside",
    ["attack", "file", "push", "answers", "peak RSS above post-GC baseline", "within (one request: 64 MiB; many: the budget)", "largest job (X-Image-Peak-Memory)", "workerd CPU", "slowest answer"],
    rows,
    "One wrangler dev with wrangler.toml's defaults, requests sent to the user worker's own address (through wrangler dev's ProxyWorker some requests of such floods are never answered, nor passed to the worker: \`node scripts/dev-proxy-drops.mjs\`), attacks 8 s apart, except MAX_UPLOAD_PIXELS and MAX_UPLOAD_DIMENSION at their maxima, so that shapes the push API refuses by default are stored and met on delivery. Codecs warmed by small jobs first; before each attack a GC is forced through the inspector and workerd's VmHWM reset; the attack's requests run at once. A kept codec memory is reused by the next job, so a job after a larger one may add little RSS; the job's own high-water mark (X-Image-Peak-Memory) is shown beside it. RSS and CPU are workerd's whole process: the local R2, Cache and Queue simulators run in it (the as-is reads include the R2 simulator's reads of the 24 MP file), and so does the queue consumer, which produces variants the requests deferred.",
  );
}
