#!/usr/bin/env node
// `npm run bench`: what the product exists for, measured against baselines in the same run.
//   1. transcode through the worker (wrangler dev, loopback) vs sharp (native libvips) in Node
//   2. WASM memory high-water mark per job (and workerd RSS) vs the 128 MB isolate limit
//   3. cache-hit path under load vs a bare worker serving the same bytes from the same Cache API
//   4. bytes at the calibrated quality target (SSIM and butteraugli) for the Kodak and Unsplash photo sets
//   5. production settings under concurrent load; 6. animated GIF -> animated WebP
//   7. a stream of requests with wrangler.toml's defaults: back to back, concurrent, after a
//      full-size HEIC view, with the queue consumer in the same isolate (`--only=stream`)
//   8. `--soak`: ten minutes of mixed traffic (bench/soak.mjs), run on its own
//   9. issue 30's hostile inputs, RSS and CPU from outside (bench/attacks.mjs, `--only=attacks`)
//  10. smart crop's added time per thumbnail (gravity=auto vs the centred crop, `--only=smartcrop`)
//  11. bytes at equal SSIMULACRA 2: per photo, the bytes each format needs to score what a mozjpeg
//      q85 JPEG of the same pixels scores, against that JPEG's (`--only=equal`; needs ../shared)
// Tables go to stdout and bench/results/report.md, a plot to bench/results/bytes.svg.
// `--smoke` runs a tiny version of every section (the harness check CI runs).
import autocannon from "autocannon";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { encodeWith } from "./lib/codecs.mjs";
import { DEFAULT_LEVEL, ladderRung, REENCODE_SPEED } from "./lib/ladder.mjs";
import { hasButteraugli, hasSsimulacra2, reference, rgba } from "./lib/metrics.mjs";
import { fmtKB, fmtMB, fmtMs, median, ratio, table, timed } from "./lib/stats.mjs";
import { forceGc, resetPeak, startWrangler, workerdMemory } from "../scripts/lib/wrangler.mjs";
import { soakSection } from "./soak.mjs";
import { attacksSection } from "./attacks.mjs";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const CORPORA = resolve(ROOT, "../shared/corpora");
const SMOKE = process.argv.includes("--smoke");
const SOAK = process.argv.includes("--soak");
const SOAK_MINUTES = Number(process.argv.find((a) => a.startsWith("--soak-minutes="))?.slice(15) ?? 10);
// `--only=memory,transcode` runs just those sections (transcode, memory, cache, bytes, concurrency, animation, smartcrop, stream, attacks, equal).
const ONLY = process.argv.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const wanted = (section) => !ONLY || ONLY.includes(section);
// `--rows=PNG` keeps only the memory rows whose name contains that text (a quick re-measure).
const ROWS = process.argv.find((a) => a.startsWith("--rows="))?.slice(7);
const RUNS = SMOKE ? 1 : 5;
const TOKEN = "bench-token-0123456789abcdef";
const LIMIT = 128 * 2 ** 20;
const started = Date.now();
const sections = [];
const log = (...a) => console.log(...a);

// The product's default qualities (the calibrated ladder at QUALITY_LEVEL 85).
const LADDER = ladderRung();
// Mirrored for sharp: libaom cpu-used 8 is libvips effort 1 (speed = 9 - effort), WebP method 4
// is effort 4, JPEG is libjpeg's standard coding (sharp's defaults: no trellis quantisation,
// the standard tables) in progressive scans with optimised Huffman tables, as the worker's
// default SPEED jpg:0 writes it (formats/jpeg jpegCoding).
const SETTINGS = { avif: { quality: LADDER.avifFast, speed: 8 }, webp: { quality: LADDER.webp, method: 4 }, jpg: { quality: LADDER.jpg, progressive: true } };
const sharpEncode = (img, format) =>
  format === "avif"
    ? img.avif({ quality: SETTINGS.avif.quality, effort: 9 - SETTINGS.avif.speed })
    : format === "webp"
      ? img.webp({ quality: SETTINGS.webp.quality, effort: SETTINGS.webp.method })
      : img.jpeg({ quality: SETTINGS.jpg.quality, progressive: SETTINGS.jpg.progressive, optimiseCoding: true });
// One libvips thread: the worker's codecs are single-threaded WASM, so this compares work, not cores.
sharp.concurrency(1);
sharp.cache(false);

// The smoke run checks the harness on the photos that ship with the repo (a bare clone has no
// ../shared); the real run needs the corpora and says so when they are missing.
if (!SMOKE && !existsSync(join(CORPORA, "photos"))) {
  console.error(`npm run bench needs the photo corpora at ${CORPORA}; \`npm run bench -- --smoke\` runs on the repo's samples.`);
  process.exit(1);
}
const photo = (name) => (SMOKE ? readFileSync(join(ROOT, "samples/street.jpg")) : readFileSync(join(CORPORA, "photos/unsplash", name)));
const PHOTO_12MP = "fatih-kgqu_qs3B78-unsplash.jpg"; // 3024x4032 camera JPEG
const PHOTO_24MP = "rachel-hisko-rEM3cK8F1pk-unsplash.jpg"; // 6000x4000 camera JPEG

async function main() {
  if (SOAK) {
    sections.push(await soakSection({ root: ROOT, corpora: CORPORA, token: TOKEN, minutes: SOAK_MINUTES, log }));
    return writeReport();
  }
  const persist = mkdtempSync(join(tmpdir(), "bench-state-"));
  log(`edge-image-cdn benchmark${SMOKE ? " (smoke)" : ""}: starting workers on loopback...`);
  // Cache on (section 3 needs it); transcodes stay real because every run asks for a new size.
  // Budgets are lifted so 24 MP can be measured; write-back is off so R2 never answers a run.
  const vars = {
    API_TOKENS: TOKEN,
    WRITE_BACK_FORMATS: "",
    MEMORY_BUDGET_MB: "4096",
    CPU_BUDGET_MS: "300000",
    MAX_SOURCE_PIXELS: "50000000",
    PEAK_MEMORY_HEADER: "on",
  };
  const worker = await startWrangler({ port: 8790, vars, persistTo: join(persist, "main") });
  const bare = await startWrangler({ port: 8791, script: join(ROOT, "bench/bare.wrangler.toml"), persistTo: join(persist, "bare") });
  try {
    const push = async (key, bytes) => {
      const once = () => fetch(`${worker.base}/_api/objects/${key}`, { method: "PUT", body: bytes, headers: { Authorization: `Bearer ${TOKEN}` } });
      let res = await once();
      // After a request that kept the isolate busy for seconds (an animated AVIF), wrangler
      // dev's proxy finds its kept-alive connection to workerd reset ("Connection reset by
      // peer" in its log) and answers the next non-GET with this 503 without sending it; GETs
      // it retries itself. One retry, logged, never silent.
      if (res.status === 503) {
        const text = await res.text();
        if (!text.includes("restarted mid-request")) throw new Error(`push ${key}: 503 ${text}`);
        log(`  push ${key}: wrangler dev's proxy lost its connection (${text.slice(0, 40)}...), retrying once`);
        res = await once();
      }
      if (res.status !== 201) throw new Error(`push ${key}: ${res.status} ${await res.text()}`);
    };
    const get = async (path) => {
      // One retry when the connection itself fails (a kept-alive socket closed under us by the
      // local dev server, seen once in a full run): logged, never silent.
      const once = () => timed(() => fetch(`${worker.base}${path}`));
      const { ms, value: res } = await once().catch((e) => {
        log(`  ${path}: ${e.message} (${e.cause?.message ?? "no cause"}), retrying once`);
        return once();
      });
      const body = Buffer.from(await res.arrayBuffer());
      return { ms, res, body };
    };
    if (wanted("transcode")) await transcodeSection(push, get);
    // The production memory budget (112 MiB), so each job runs the plan production picks (a grid
    // AVIF when the whole-image encoder would be over it) and refusals show as they happen.
    // EDGE_TTL=0: no edge-cache put. Locally the Cache API is a simulator inside the same
    // workerd process, whose copies of the output showed as job memory (the 800x600x50 AVIF
    // source -> WebP job: 60.7 MiB of RSS with the put, 54.4 without, the header 48.2); on
    // Cloudflare the cache is another service, and the worker's own output buffer the put
    // reads is in the header's figure either way.
    if (wanted("memory")) await memorySection({ ...vars, MEMORY_BUDGET_MB: "112", ...(process.env.BENCH_EDGE_CACHE ? {} : { EDGE_TTL: "0" }) });
    if (wanted("cache")) await cacheHitSection(push, get, worker, bare);
    if (wanted("bytes")) await bytesSection(push, get);
    if (wanted("concurrency")) await concurrencySection();
    if (wanted("animation")) await animationSection(push, get);
    if (wanted("smartcrop")) await smartCropSection(push, get);
    if (wanted("equal")) await equalQualitySection(push, get, { vars, persist });
    if (wanted("stream")) await streamSection();
    if (wanted("attacks")) sections.push(await attacksSection({ root: ROOT, corpora: CORPORA, token: TOKEN, smoke: SMOKE, log }));
  } finally {
    worker.stop();
    bare.stop();
    rmSync(persist, { recursive: true, force: true });
  }
  await writeReport();
}

async function transcodeSection(push, get) {
  const src24 = photo(PHOTO_24MP);
  const jobs = [
    { name: "JPEG 1080p -> 800w", key: "bench/p1080", bytes: await sharp(src24).resize(1920, 1080, { fit: "cover" }).jpeg({ quality: 90 }).toBuffer(), width: 800 },
    ...(SMOKE ? [] : [{ name: "12 MP photo -> 1200w", key: "bench/p12", bytes: photo(PHOTO_12MP), width: 1200 }]),
  ];
  const formats = SMOKE ? ["webp", "jpg"] : ["avif", "webp", "jpg"];
  const rows = [];
  for (const job of jobs) {
    await push(`${job.key}.jpg`, job.bytes);
    for (const format of formats) {
      const worker = [];
      const native = [];
      let wBytes = 0;
      let nBytes = 0;
      let timing = "";
      // Run 0 is the warm-up; each run asks for a new width so the worker really transcodes.
      for (let run = 0; run <= RUNS; run++) {
        const width = job.width - run;
        const { ms, res, body } = await get(`/${job.key}_${width}_0.jpg?caplist=${format}`);
        if (res.status !== 200 || res.headers.get("X-Image-Source") !== "transcode") throw new Error(`${job.name} ${format}: ${res.status} ${res.headers.get("X-Image-Tried")}`);
        const n = await timed(() => sharpEncode(sharp(job.bytes).resize(width), format).toBuffer());
        if (run === 0) continue;
        worker.push(ms);
        native.push(n.ms);
        wBytes = body.length;
        nBytes = n.value.length;
        timing = res.headers.get("Server-Timing");
      }
      const w = median(worker);
      const n = median(native);
      rows.push([job.name, format, fmtMs(w), fmtMs(n), ratio(w, n), fmtKB(wBytes), fmtKB(nBytes), timing.replace(/;desc="[^"]*"/g, "")]);
      log(`  transcode ${job.name} ${format}: worker ${fmtMs(w)}, sharp ${fmtMs(n)}`);
    }
  }
  sections.push(
    table(
      "1. Transcode pipeline: worker (workerd, WASM) vs sharp (native libvips), median of " + RUNS,
      ["job", "format", "worker", "sharp (baseline)", "worker/sharp", "worker bytes", "sharp bytes", "worker Server-Timing (last run)"],
      rows,
      "Wall time per request over loopback (worker: HTTP included) vs sharp in this Node process with one libvips thread. Same source, width, quality and speed. Ratio > 1: the worker is slower by that factor.",
    ),
  );
}

/**
 * Smart crop (gravity=auto): what it adds to a thumbnail job. Each photo's 300x300 WebP
 * thumbnail is asked for with the centred crop and with gravity=auto, a new size each run so
 * both transcode; the worker's Server-Timing says how long smartcrop.js took, and the wall
 * times say what the whole job cost either way (smart crop resizes the whole image to cover
 * the box instead of only the centred window, so its resize is larger too).
 */
async function smartCropSection(push, get) {
  const names = SMOKE ? [] : readdirSync(join(CORPORA, "photos/unsplash")).filter((n) => n.endsWith(".jpg"));
  // A square photo has no window to choose in a square box (smartcrop does not run): left out.
  const photos = [];
  for (const name of names) {
    const bytes = photo(name);
    const m = await sharp(bytes).metadata();
    if (m.width !== m.height && photos.length < 6) photos.push({ name, bytes });
  }
  if (SMOKE) photos.push({ name: "street.jpg", bytes: readFileSync(join(ROOT, "samples/street.jpg")) });
  const rows = [];
  const shares = [];
  for (const [i, p] of photos.entries()) {
    const key = `bench/smart${i}`;
    await push(`${key}.jpg`, p.bytes);
    const centred = [];
    const smart = [];
    const crop = [];
    for (let run = 0; run <= RUNS; run++) {
      const side = 300 - run;
      const a = await get(`/${key}_${side}_${side}.jpg?caplist=webp`);
      const b = await get(`/${key}_${side}_${side}.jpg?caplist=webp&gravity=auto`);
      for (const r of [a, b]) if (r.res.status !== 200 || r.res.headers.get("X-Image-Source") !== "transcode") throw new Error(`smart crop ${p.name}: ${r.res.status} ${r.res.headers.get("X-Image-Tried")}`);
      if (run === 0) continue;
      centred.push(a.ms);
      smart.push(b.ms);
      crop.push(Number(/smartcrop;dur=([\d.]+)/.exec(b.res.headers.get("Server-Timing") ?? "")?.[1] ?? NaN));
    }
    const [c, s2, k] = [median(centred), median(smart), median(crop)];
    shares.push((s2 - c) / c);
    rows.push([p.name, fmtMs(c), fmtMs(s2), fmtMs(k), `${((100 * k) / s2).toFixed(1)}%`, `${((100 * (s2 - c)) / c).toFixed(1)}%`]);
    log(`  smart crop ${p.name}: centred ${fmtMs(c)}, auto ${fmtMs(s2)} (smartcrop ${fmtMs(k)})`);
  }
  sections.push(
    table(
      `10. Smart crop (gravity=auto) per 300x300 WebP thumbnail, median of ${RUNS}`,
      ["photo", "centred crop (baseline)", "gravity=auto", "smartcrop (Server-Timing)", "smartcrop / auto job", "added / centred job"],
      rows,
      `Goal: smart crop adds under 15% to the job. Median added time over the photos: ${(100 * median(shares)).toFixed(1)}% (the analysis itself, and a larger resize: the whole image is resized to cover the box before the window is cut, where the centred crop resizes only its window). Wall time per request over loopback; each run a new size, so both transcode. Square photos are left out (in a square box there is no window to choose).`,
    ),
  );
}

/**
 * Bytes at equal SSIMULACRA 2 (the guide's rule for judging an encoder setting). For each photo
 * (every third Kodak photo as is; five Unsplash photos at 1200w, pushed as PNG so the worker
 * encodes exactly the pixels scored) the reference is a mozjpeg q85 JPEG of the same pixels and
 * its SSIMULACRA 2 score the target. Each format is asked for at a grid of `q` levels through
 * the worker (its own encoders at their on-demand speeds); the bytes that reach the target are
 * interpolated between the two grid points around it (log bytes, linear in the score). Also the
 * served default (no `q`): its bytes against the reference and its score against the target.
 */
async function equalQualitySection(push, get, { vars, persist }) {
  if (SMOKE || !hasSsimulacra2()) {
    log("  equal quality: skipped (needs ../shared's photos and SSIMULACRA 2)");
    return;
  }
  // The grid measures the encoders at fixed qualities: a worker without per-image quality.
  const fixed = await startWrangler({ port: 8792, vars: { ...vars, PER_IMAGE_QUALITY: "" }, persistTo: join(persist, "fixed") });
  try {
    await equalQualityRuns(push, get, async (key, bytes) => {
      const res = await fetch(`${fixed.base}/_api/objects/${key}`, { method: "PUT", body: bytes, headers: { Authorization: `Bearer ${TOKEN}` } });
      if (res.status !== 201) throw new Error(`push ${key} (fixed-quality worker): ${res.status} ${await res.text()}`);
    }, async (path) => {
      const res = await fetch(`${fixed.base}${path}`);
      return { res, body: Buffer.from(await res.arrayBuffer()) };
    });
  } finally {
    fixed.stop();
  }
}

async function equalQualityRuns(push, get, pushFixed, getFixed) {
  const dir = (set) => join(CORPORA, "photos", set);
  const sets = {
    kodak: readdirSync(dir("kodak")).filter((f) => f.endsWith(".png")).sort().filter((_, i) => i % 3 === 0).map((f) => ({ name: f, png: async () => readFileSync(join(dir("kodak"), f)) })),
    "unsplash (1200w)": readdirSync(dir("unsplash")).filter((f) => f.endsWith(".jpg")).sort().slice(0, 5).map((f) => ({ name: f, png: () => sharp(join(dir("unsplash"), f)).rotate().resize(1200).png().toBuffer() })),
    // Held out: photos the per-image search's settings were never tuned on (issue 31).
    "held-out": [
      ...readdirSync(dir("kodak")).filter((f) => f.endsWith(".png")).sort().filter((_, i) => i % 6 === 5).map((f) => ({ name: f, png: async () => readFileSync(join(dir("kodak"), f)) })),
      ...readdirSync(dir("unsplash")).filter((f) => f.endsWith(".jpg")).sort().slice(5, 10).map((f) => ({ name: f, png: () => sharp(join(dir("unsplash"), f)).rotate().resize(1200).png().toBuffer() })),
    ],
  };
  // Levels (QUALITY_LEVEL's scale, mapped per format by the ladder) wide enough to bracket the target.
  const LEVELS = { avif: [35, 50, 62, 75, 85, 92], webp: [60, 70, 80, 87, 93, 97], jpg: [60, 70, 80, 85, 90, 95] };
  const rows = [];
  for (const [set, files] of Object.entries(sets)) {
    const totals = Object.fromEntries(Object.keys(LEVELS).map((f) => [f, { ref: 0, equal: 0, served: 0, servedScore: 0, worst: Infinity, missed: 0 }]));
    let targetSum = 0;
    for (const f of files) {
      const png = await f.png();
      const key = `bench/eq-${set.split(" ")[0]}-${f.name.replace(/\W/g, "")}`;
      await push(`${key}.png`, png);
      await pushFixed(`${key}.png`, png);
      const pixels = await rgba(png);
      const ref = await reference(pixels);
      const jpg = await encodeWith("mozjpeg", pixels, 85);
      const target = await ref.ssimulacra2(jpg);
      targetSum += target;
      for (const [format, levels] of Object.entries(LEVELS)) {
        // The served default first: a grid point at the default level would leave it in the edge cache.
        const servedRes = await get(`/${key}.png?caplist=${format}`);
        const served = servedRes.body;
        const search = servedRes.res.headers.get("x-image-quality");
        const points = [];
        for (const q of levels) {
          const { res, body } = await getFixed(`/${key}.png?caplist=${format}&q=${q}`);
          if (res.status !== 200) throw new Error(`equal quality ${key} ${format} q=${q}: ${res.status}`);
          points.push({ bytes: body.length, score: await ref.ssimulacra2(body) });
        }
        const servedScore = await ref.ssimulacra2(served);
        points.sort((a, b) => a.score - b.score);
        const at = points.findIndex((p) => p.score >= target);
        const t = totals[format];
        let bytes;
        if (at < 0) {
          // Even the top of the grid falls short: counted at its bytes, and said.
          bytes = points[points.length - 1].bytes;
          t.missed++;
        } else if (at === 0) bytes = points[0].bytes;
        else {
          const [a, b] = [points[at - 1], points[at]];
          const k = (target - a.score) / (b.score - a.score);
          bytes = Math.exp(Math.log(a.bytes) + k * (Math.log(b.bytes) - Math.log(a.bytes)));
        }
        t.ref += jpg.byteLength;
        t.equal += bytes;
        t.served += served.length;
        t.servedScore += servedScore;
        t.worst = Math.min(t.worst, servedScore - target);
        log(`  equal quality ${set} ${f.name} ${format}: reference ${jpg.byteLength} B at ${target.toFixed(1)}; equal ${Math.round(bytes)} B (${(bytes / jpg.byteLength).toFixed(3)}x); served ${served.length} B at ${servedScore.toFixed(1)}${search ? ` (per-image quality: ${search})` : ""}`);
      }
      ref.dispose();
    }
    for (const [format, t] of Object.entries(totals)) {
      rows.push([set, format, `${(t.equal / t.ref).toFixed(3)}x${t.missed ? ` (${t.missed} short of the target)` : ""}`, `${(t.served / t.ref).toFixed(3)}x`, (t.servedScore / files.length).toFixed(2), (targetSum / files.length).toFixed(2), t.worst.toFixed(1)]);
    }
  }
  sections.push(
    table(
      "11. Bytes at equal SSIMULACRA 2, against a mozjpeg q85 JPEG of the same pixels",
      ["set", "format", "bytes at the reference's score", "served default: bytes", "served: mean score", "reference: mean score", "served: worst vs reference"],
      rows,
      `Per photo, the bytes each format needs to reach the SSIMULACRA 2 score (../shared/tools/ssimulacra2, libjxl 0.11.2) of a mozjpeg q85 JPEG (@jsquash/jpeg) of the same pixels, interpolated on a grid of q levels asked of a worker without per-image quality (its encoders at fixed qualities and their on-demand speeds), summed over the set and divided by the reference's bytes; beside it, what the worker serves with its defaults (QUALITY_LEVEL 85; per-image quality for AVIF and WebP). Sets: every third Kodak photo (8) and five Unsplash photos at 1200w; held out (never used to tune per-image quality's settings): every sixth Kodak photo from the sixth (4) and the other five Unsplash photos at 1200w. Goals (issue 31, first view): AVIF <= 0.80x, WebP and JPEG <= 1.00x, no image more than 2 points below the reference.`,
    ),
  );
}

/**
 * The codec layer's memory table: each job's whole-job peak as the worker reports it
 * (X-Image-Peak-Memory: WASM memories plus JS buffers) beside the figure taken from outside:
 * workerd's peak RSS over the request (VmHWM, reset just before) above its RSS after a forced
 * full GC through the inspector. The inspector's own heap usage misses WASM memories, so RSS is
 * the measure.
 */
const MIME = { jpg: "image/jpeg", webp: "image/webp", avif: "image/avif", png: "image/png" };

async function memorySection(memVars) {
  const heic = readFileSync(join(ROOT, "samples/pug.heic"));
  const src24 = photo(PHOTO_24MP);
  const parrots = readFileSync(join(ROOT, "samples/parrots.png"));
  const jobs = SMOKE
    ? [["12 MP iPhone HEIC -> 800w JPEG", "mem/heic", "heic", heic, "_800_0.jpg?caplist=jpg", 48]]
    : [
        ["12 MP iPhone HEIC -> 800w JPEG", "mem/heic", "heic", heic, "_800_0.jpg?caplist=jpg", 48],
        ["12 MP iPhone HEIC -> 800w WebP", "mem/heic", "heic", heic, "_800_0.jpg?caplist=webp", 48],
        ["12 MP iPhone HEIC -> 800w AVIF", "mem/heic", "heic", heic, "_800_0.jpg?caplist=avif", 64],
        ["24 MP progressive JPEG (rachel-hisko) -> 1200w WebP", "mem/p24", "jpg", src24, "_1200_0.jpg?caplist=webp", 96],
        ["24 MP progressive JPEG (rachel-hisko) -> 1200w AVIF", "mem/p24", "jpg", src24, "_1200_0.jpg?caplist=avif", 96],
        ["48 MP baseline JPEG (8000x6000) -> 1600w JPEG", "mem/p48", "jpg", await sharp(parrots).resize(8000, 6000, { fit: "fill" }).jpeg({ quality: 85 }).toBuffer(), "_1600_0.jpg?caplist=jpg", 64],
        ["12 MP iPhone HEIC -> full-size JPEG", "mem/heic", "heic", heic, ".jpg?caplist=jpg", 128],
        ["12 MP iPhone HEIC -> full-size AVIF", "mem/heic", "heic", heic, ".jpg?caplist=avif", 128],
        ["12 MP iPhone HEIC -> full-size WebP", "mem/heic", "heic", heic, ".jpg?caplist=webp", 128],
        ["24 MP baseline JPEG -> full-size WebP", "mem/b24", "jpg", await sharp(src24).jpeg({ quality: 90, progressive: false }).toBuffer(), ".jpg?caplist=webp", 128],
        // Refused from the header (its 69 MiB of coefficients beside the YUV picture): the original is served.
        ["24 MP progressive JPEG -> full-size WebP", "mem/p24", "jpg", src24, ".jpg?caplist=webp", 128],
        // A grid of 504x504 tiles beside the coefficients (over the request's CPU budget: with
        // it lifted here, produced in the request).
        ["24 MP progressive JPEG -> full-size AVIF", "mem/p24", "jpg", src24, ".jpg?caplist=avif", 128],
        // The source file alone is ~22 MiB (held in JS for the job, and read from R2).
        ["24 MP lossy WebP (6000x4000) -> 1200w WebP", "mem/w24", "webp", await sharp(src24).webp({ quality: 80 }).toBuffer(), "_1200_0.webp?caplist=webp", 48],
        ["12 MP PNG (4000x3000) -> 1200w WebP", "mem/png12", "png", await sharp(parrots).resize(4000, 3000, { fit: "fill" }).png().toBuffer(), "_1200_0.png?caplist=webp", 64],
      ].filter(([name]) => !ROWS || name.includes(ROWS));
  const rows = [];
  // What serving the stored original alone raises RSS by: locally, R2 is a simulator inside the
  // same workerd process, so its read of the file shows in the worker's RSS (on Cloudflare, R2 is
  // another service). Measured once per source.
  const originalAlone = new Map();
  for (const [name, key, ext, bytes, path, goal] of jobs) {
    if (!originalAlone.has(key)) {
      const o = await measureFromOutside(memVars, key, ext, bytes, `.${ext}?caplist=${ext}`);
      originalAlone.set(key, o.res.status === 200 && o.res.headers.get("X-Image-Tried") === `${ext}=r2` ? o.after.hwm - o.base : NaN);
    }
    const alone = originalAlone.get(key);
    const { ms, res, after, base } = await measureFromOutside(memVars, key, ext, bytes, path);
    const rss = after.hwm - base;
    const header = Number(res.headers.get("X-Image-Peak-Memory") ?? NaN);
    const warm = await measureFromOutside(memVars, key, ext, bytes, path, undefined, true);
    const rssWarm = warm.after.hwm - warm.base;
    const served = res.status === 200 ? `${res.headers.get("Content-Type")} (${res.headers.get("X-Image-Tried")})` : `${res.status} ${res.headers.get("X-Image-Tried")}`;
    const vs = (r) => (Number.isFinite(header) ? ratio(header, r) : "-");
    rows.push([name, served, fmtMB(header), fmtMB(rss), vs(rss), fmtMB(rssWarm), vs(rssWarm), fmtMB(alone), Number.isFinite(alone) ? vs(rssWarm - alone) : "-", `${goal} MiB`, rss <= goal * 2 ** 20 && res.status === 200 && res.headers.get("Content-Type") === MIME[path.split("caplist=")[1]] ? "met" : "not met", fmtMs(ms)]);
    log(`  memory ${name}: ${res.status}, header ${fmtMB(header)}, RSS peak above post-GC baseline ${fmtMB(rss)}, with the codecs' optimised code compiled first ${fmtMB(rssWarm)}`);
  }
  sections.push(
    table(
      "2. Memory per job: the worker's whole-job figure vs workerd's peak RSS, against the issue's goals",
      ["job", "served", "X-Image-Peak-Memory", "RSS peak above post-GC baseline (first large job)", "header/RSS", "RSS, optimised code compiled first", "header/RSS (optimised)", "RSS serving the original alone", "header/(RSS optimised - original alone)", "goal", "verdict", "time"],
      rows,
      "RSS: workerd's VmHWM over the request (reset through /proc/PID/clear_refs just before) minus its VmRSS after a full GC forced through the inspector (HeapProfiler.collectGarbage), in a fresh workerd per job (the source pushed and a 64-pixel-wide job from a small source with the same codecs run first, so WASM compilation, paid once per isolate, is not counted). One request at a time, with the production memory budget (MEMORY_BUDGET_MB=112: a job predicted over it is refused and the next candidate or the original is served, shown in 'served') and the request CPU budget lifted. A job 'met' its goal when it answered 200 in the asked format within the goal (first-large-job RSS). V8 compiles WASM twice: with its baseline compiler when a module is first used, and again with its optimising compiler (TurboFan) for the functions that get hot; a 64-pixel warm-up never makes them hot, so the first column pays that second compile too (once per isolate, not per job; the 24 MP baseline JPEG -> full-size WebP job measured 63.5-67.9 MiB in four runs, 53.3-57.3 with workerd run under V8's --liftoff-only and 56.6 under --no-wasm-dynamic-tiering, which compiles every function optimised up front: scripts/rss-probe.mjs). 'RSS, optimised code compiled first' runs three jobs of the same kind on a ~480-pixel source before the measured one (a fresh workerd again), so that compile is paid before the peak is reset. workerd's RSS also holds the local R2 simulator's read of the source (same process): 'RSS serving the original alone' measures that part by asking for the stored original untouched (a fresh workerd, same warm-up), and the last ratio sets it aside.",
    ),
  );
}

/**
 * One job in a fresh workerd, measured from outside: its peak RSS (VmHWM, reset just before the
 * request) above the RSS after a full GC forced through the inspector.
 */
async function measureFromOutside(memVars, key, ext, bytes, path, warmBytes, tierUp = false) {
  const parrots = readFileSync(join(ROOT, "samples/parrots.png"));
  // A fresh workerd per job: memory a process has freed is not returned to the OS, so after
  // an earlier job the peak would hide in pages already counted in the baseline.
  const persist = mkdtempSync(join(tmpdir(), "bench-mem-"));
  const worker = await startWrangler({ port: 8792, vars: memVars, persistTo: persist, inspectorPort: 9241 });
  let ms, res, after, base, body;
  try {
    const put = await fetch(`${worker.base}/_api/objects/${key}.${ext}`, { method: "PUT", body: bytes, headers: { Authorization: `Bearer ${TOKEN}` } });
    if (put.status !== 201) throw new Error(`push ${key}: ${put.status}`);
    // A small job with the same codecs on another, small source first: compiling a codec's
    // WASM (tens of MiB of machine code) is paid once per isolate, not per job, and a small
    // source leaves no large freed pages behind for the measured job to reuse unseen. (An
    // animation warms up on a two-frame one.)
    const small =
      warmBytes ??
      (ext === "heic"
        ? readFileSync(join(ROOT, "test/fixtures/rainbow-451x461.heic"))
        : ext === "gif"
          ? await sharp([await sharp(parrots).resize(96).png().toBuffer(), await sharp(parrots).resize(96).flop().png().toBuffer()], { join: { animated: true } }).gif().toBuffer()
          : await sharp(parrots).resize(96).toFormat(ext === "jpg" ? "jpeg" : ext).toBuffer());
    await fetch(`${worker.base}/_api/objects/warm/w.${ext}`, { method: "PUT", body: small, headers: { Authorization: `Bearer ${TOKEN}` } });
    // (A GIF for AVIF at its 96 pixels' width: an AVIF sequence is made of 64x64 or more.)
    await (await fetch(`${worker.base}/warm/w_${ext === "gif" && path.includes("avif") ? 96 : 64}_0${path.slice(path.indexOf("."))}`)).arrayBuffer();
    if (tierUp) {
      // V8 compiles a WASM function with its baseline compiler (Liftoff) first and again with
      // its optimising one (TurboFan) once it is hot; a 64-pixel job never makes it hot, so the
      // first large job pays that compile (the 24 MP JPEG -> full-size WebP job: 63.5-67.9 MiB of
      // RSS, 53.3-57.3 with V8's --liftoff-only; scripts/rss-probe.mjs). Three jobs of the same
      // kind on a ~480-pixel source make the hot functions hot; their own memory is a few MiB.
      const [mid, midWidth] = ext === "heic" ? [readFileSync(join(ROOT, "test/fixtures/rainbow-451x461.heic")), 451] : [await sharp(parrots).resize(480).toFormat(ext === "jpg" ? "jpeg" : ext).toBuffer(), 480];
      await fetch(`${worker.base}/_api/objects/warm/m.${ext}`, { method: "PUT", body: mid, headers: { Authorization: `Bearer ${TOKEN}` } });
      // Full-size jobs warm at (nearly) full size, resizing ones at a smaller width.
      const resizes = /^_\d+_\d+/.test(path);
      for (let i = 0; i < 3; i++) await (await fetch(`${worker.base}/warm/m_${(resizes ? 300 : midWidth) - i}_0${path.slice(path.indexOf("."))}`)).arrayBuffer();
    }
    await forceGc(worker.inspectorPort);
    base = workerdMemory(worker.child.pid).rss;
    resetPeak(worker.child.pid);
    ({ ms, value: res } = await timed(() => fetch(`${worker.base}/${key}${path}`)));
    body = Buffer.from(await res.arrayBuffer());
    after = workerdMemory(worker.child.pid);
  } finally {
    await stopAndClean(worker, persist);
  }
  return { ms, res, after, base, body };
}

/**
 * Animations (issue 15): each animated GIF of the corpora served to a client that takes WebP
 * (Chrome's Accept) as an animated WebP at full size, against the GIF and against sharp's
 * animated WebP from the same GIF (libvips + libwebp's WebPAnimEncoder, one thread) at the same
 * quality and method; whole-job memory of the largest from outside.
 */
async function animationSection(push, get) {
  const dir = SMOKE ? null : join(CORPORA, "gif");
  const files = SMOKE
    ? [["pan (generated, 160x120x6)", await sharp(await Promise.all([0, 1, 2, 3, 4, 5].map((i) => sharp(readFileSync(join(ROOT, "samples/parrots.png"))).extract({ left: i * 20, top: i * 10, width: 160, height: 120 }).png().toBuffer())), { join: { animated: true } }).gif().toBuffer()]]
    : [
        ...readdirSync(join(dir, "synthetic")).filter((f) => f.endsWith(".gif")).map((f) => [f, readFileSync(join(dir, "synthetic", f))]),
        ...readdirSync(join(dir, "pillow-gif")).filter((f) => f.endsWith(".gif")).map((f) => [f, readFileSync(join(dir, "pillow-gif", f))]),
      ];
  // A transparent animation: the largest pan (the generated one in smoke runs) cut out as a
  // disc, transparent outside (a sticker), so AVIF clients get an alpha track.
  const discSource = SMOKE ? files[0] : files.find(([n]) => n.startsWith("pan-seondol"));
  if (discSource) {
    const { data, info } = await sharp(discSource[1], { animated: true }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const [w, h] = [info.width, info.pageHeight];
    for (let p = 0; p < data.length / 4; p++) if (Math.hypot((p % w) - w / 2, (Math.floor(p / w) % h) - h / 2) > 0.46 * h) data[p * 4 + 3] = 0;
    const delay = (await sharp(discSource[1], { animated: true }).metadata()).delay;
    const disc = await sharp(data, { raw: { width: w, height: h * info.pages, channels: 4, pageHeight: h } }).gif({ delay, loop: 0 }).toBuffer();
    files.push([discSource[0].replace(/\.gif$/, "-disc-transparent.gif"), disc]);
  }
  const rows = [];
  let sumGif = 0;
  let sumOurs = 0;
  let sumSharp = 0;
  // AVIF totals over the GIFs served as animated AVIF (photo-like ones; flat-colour GIFs, and
  // transparent ones under 200x200, stay WebP), and those same GIFs' bytes.
  let sumAvif = 0;
  let sumAvifGif = 0;
  // The largest pan's animated AVIF, pushed back as a source for the memory table (6b).
  const largestName = (SMOKE ? files[0] : files.find(([n]) => n.startsWith("pan-seondol")))?.[0];
  let largestAvif;
  let discGif;
  for (const [name, gif] of files) {
    let meta;
    try {
      meta = await sharp(gif, { animated: true }).metadata();
    } catch {
      continue;
    }
    if ((meta.pages ?? 1) < 2) continue;
    const key = `anim/${name.replace(/\.gif$/, "").replace(/[^a-z0-9_-]/gi, "-")}`;
    await push(`${key}.gif`, gif);
    const { ms, res, body } = await get(`/${key}.gif?caplist=webp,gif`);
    const ok = res.status === 200 && res.headers.get("Content-Type") === "image/webp";
    const { ms: sharpMs, value: sharpOut } = await timed(() => sharp(gif, { animated: true }).webp({ quality: SETTINGS.webp.quality, effort: SETTINGS.webp.method }).toBuffer());
    let frames = "-";
    if (ok) {
      const m = await sharp(body, { animated: true }).metadata();
      // sharp reports no page count for a WebP that came out as one frame (identical frames merged).
      frames = `${m.pages ?? 1}/${meta.pages}`;
      sumGif += gif.length;
      sumOurs += body.length;
      sumSharp += sharpOut.length;
    }
    // Asked as AVIF alone: produced in the request (within the platform's CPU limit) when the
    // GIF is opaque and photo-like; otherwise the answer is a still or a 404 and shows as "-".
    const a = await get(`/${key}.gif?caplist=avif`);
    const avifOk = a.res.status === 200 && a.res.headers.get("Content-Type") === "image/avif" && a.body.includes(Buffer.from("avis"));
    if (avifOk && largestName === name) largestAvif = a.body;
    if (name.endsWith("-disc-transparent.gif")) discGif = { name, gif, avifOk, alpha: avifOk && a.body.includes(Buffer.from("auxv")) };
    if (avifOk && ok) {
      sumAvif += a.body.length;
      sumAvifGif += gif.length;
    }
    rows.push([name, `${meta.width}x${meta.pageHeight}x${meta.pages}`, fmtKB(gif.length), ok ? fmtKB(body.length) : `${res.status} ${res.headers.get("X-Image-Tried")}`, ok ? ratio(body.length, gif.length) : "-", avifOk ? fmtKB(a.body.length) : "-", avifOk ? ratio(a.body.length, gif.length) : "-", avifOk ? fmtMs(a.ms) : "-", fmtKB(sharpOut.length), ok ? ratio(body.length, sharpOut.length) : "-", frames, fmtMs(ms), fmtMs(sharpMs), ratio(ms, sharpMs), res.headers.get("X-Image-Peak-Memory") ? fmtMB(Number(res.headers.get("X-Image-Peak-Memory"))) : "-"]);
    log(`  animation ${name}: ${res.status} ${fmtKB(body.length)} (gif ${fmtKB(gif.length)}) in ${fmtMs(ms)}, sharp ${fmtMs(sharpMs)}`);
  }
  rows.push(["all that served", "", fmtKB(sumGif), fmtKB(sumOurs), ratio(sumOurs, sumGif), fmtKB(sumAvif), `${ratio(sumAvif, sumAvifGif)} (of ${fmtKB(sumAvifGif)})`, "", fmtKB(sumSharp), ratio(sumOurs, sumSharp), "", "", "", "", ""]);
  const memRows = [];
  const largest = SMOKE ? files[0] : files.find(([n]) => n.startsWith("pan-seondol"));
  if (largest) {
    const memVars = { API_TOKENS: TOKEN, WRITE_BACK_FORMATS: "", MEMORY_BUDGET_MB: "4096", CPU_BUDGET_MS: "300000", PEAK_MEMORY_HEADER: "on" };
    // As in section 2: what serving the stored original untouched raises RSS by (the local R2
    // simulator's read of it lives in workerd too), measured once per source.
    const alone = new Map();
    const row = async (label, key, ext, bytes, path, goalMiB, warm) => {
      const m = await measureFromOutside(memVars, key, ext, bytes, path, warm);
      const rss = m.after.hwm - m.base;
      const header = Number(m.res.headers.get("X-Image-Peak-Memory") ?? NaN);
      if (!alone.has(key)) {
        const o = await measureFromOutside(memVars, key, ext, bytes, `.${ext}?caplist=${ext}`, warm);
        alone.set(key, o.res.status === 200 && o.res.headers.get("X-Image-Tried") === `${ext}=r2` ? o.after.hwm - o.base : NaN);
      }
      const a = alone.get(key);
      const wanted = MIME[path.split("caplist=")[1]];
      const ok = m.res.status === 200 && m.res.headers.get("Content-Type") === wanted;
      const alpha = m.body.includes(Buffer.from("auxv")) ? " (alpha track)" : "";
      const verdict = goalMiB ? (ok && rss <= goalMiB * 2 ** 20 ? "met" : "not met") : ok ? "served" : "not served";
      memRows.push([label, `${m.res.status} ${m.res.headers.get("Content-Type")}${alpha}`, fmtMB(header), fmtMB(rss), ratio(header, rss), fmtMB(a), Number.isFinite(a) ? ratio(header, rss - a) : "-", goalMiB ? `${goalMiB} MiB` : "-", verdict, fmtMs(m.ms)]);
      log(`  animation memory ${label}: header ${fmtMB(header)}, RSS ${fmtMB(rss)}, original alone ${fmtMB(a)}`);
    };
    await row(`${largest[0]} -> animated WebP`, "mem/anim", "gif", largest[1], ".gif?caplist=webp", 48);
    await row(`${largest[0]} -> animated AVIF`, "mem/anim", "gif", largest[1], ".gif?caplist=avif", 48);
    // The transparent cut-out as AVIF: the colour and the alpha sequences' encoders at once.
    if (discGif) await row(`${discGif.name} -> animated AVIF`, "mem/disc", "gif", discGif.gif, ".gif?caplist=avif", 0);
    // An animated AVIF source (the AVIF above), decoded frame by frame by our libaom decoder
    // build into an animated WebP; warmed up on libavif's five-frame sequence.
    if (largestAvif) await row(`its animated AVIF (${fmtKB(largestAvif.length)}) as a source -> animated WebP`, "mem/avis", "avif", largestAvif, ".avif?caplist=webp", 48, readFileSync(join(ROOT, "test/fixtures/colors-animated-8bpc.avif")));
  }
  sections.push(
    table(
      "6. Animated GIF -> animated WebP and animated AVIF (full size), vs the GIF and vs sharp",
      ["GIF", "canvas x frames", "GIF bytes", "our WebP", "WebP vs GIF (goal <= 0.5x)", "our AVIF", "AVIF vs GIF (goal <= 0.35x)", "AVIF time", "sharp WebP", "our WebP vs sharp", "WebP frames out/in", "WebP time", "sharp time", "WebP time vs sharp", "X-Image-Peak-Memory (WebP)"],
      rows,
      `Our WebP: the worker's response to caplist=webp,gif (giflib frames composited in the worker, libwebp's WebPAnimEncoder at WebP q${SETTINGS.webp.quality}, method ${SETTINGS.webp.method}), request time through wrangler dev on loopback. Our AVIF: the response to caplist=avif (an AV1 sequence from our libaom build, real-time mode, cpu-used ${SETTINGS.avif.speed}, the AVIF quality q${SETTINGS.avif.quality}); "-" where the worker does not make one (a flat-colour GIF, or a transparent one under 200x200: a still instead; a transparent one of 200x200 or more gets an alpha track). The AVIF total is over the GIFs that got one. sharp: the same GIF to an animated WebP at the same quality and effort, one libvips thread, in Node (sharp writes no animated AVIF). GIFs with one frame are left out.`,
    ),
    ...(memRows.length
      ? [
          table(
            "6b. Animation memory, measured from outside (as in section 2)",
            ["job", "served", "X-Image-Peak-Memory", "RSS peak above post-GC baseline", "header/RSS", "RSS serving the original alone", "header/(RSS - original alone)", "goal", "verdict", "time"],
            memRows,
            "A fresh workerd per job; a two-frame animation served first so the codecs are compiled; VmHWM reset just before the request. The verdict is on the RSS column as measured; 'RSS serving the original alone' (the stored original asked for untouched, a fresh workerd, same warm-up) shows what the local R2 simulator's read of the source adds to it, as in section 2. The transparent cut-out has no goal in the issue.",
          ),
        ]
      : []),
  );
}

/**
 * Production defaults (MEMORY_BUDGET_MB=112, admission, single flight) under load, measured from
 * outside: 8 concurrent mixed requests, then 8 concurrent requests for one variant, then 50
 * sequential uncached jobs; workerd's peak RSS above its post-GC baseline over each phase.
 */
async function concurrencySection() {
  const persist = mkdtempSync(join(tmpdir(), "bench-conc-"));
  const worker = await startWrangler({ port: 8793, vars: { API_TOKENS: TOKEN, PEAK_MEMORY_HEADER: "on" }, persistTo: persist, inspectorPort: 9242 });
  const rows = [];
  try {
    const push = async (key, bytes) => {
      const res = await fetch(`${worker.base}/_api/objects/${key}`, { method: "PUT", body: bytes, headers: { Authorization: `Bearer ${TOKEN}` } });
      if (res.status !== 201) throw new Error(`push ${key}: ${res.status}`);
    };
    await push("c/p12.jpg", photo(PHOTO_12MP));
    await push("c/heic.heic", readFileSync(join(ROOT, "samples/pug.heic")));
    await push("c/p24.jpg", photo(PHOTO_24MP));
    await push("c/small.jpg", await sharp(readFileSync(join(ROOT, "samples/parrots.png"))).jpeg().toBuffer());
    for (const f of ["webp", "avif", "jpg"]) await (await fetch(`${worker.base}/c/small_64_0.jpg?caplist=${f}`)).arrayBuffer();
    const phase = async (name, paths, concurrent) => {
      await forceGc(worker.inspectorPort);
      const base = workerdMemory(worker.child.pid).rss;
      resetPeak(worker.child.pid);
      const results = [];
      const one = async (path) => {
        const { ms, value: res } = await timed(() => fetch(`${worker.base}${path}`));
        const body = Buffer.from(await res.arrayBuffer());
        results.push({ path, ms, status: res.status, retryAfter: res.headers.get("Retry-After"), timing: res.headers.get("Server-Timing") ?? "", body });
      };
      if (concurrent) await Promise.all(paths.map(one));
      else for (const p of paths) await one(p);
      const peak = workerdMemory(worker.child.pid).hwm - base;
      const ms = results.map((r) => r.ms).sort((a, b) => a - b);
      const p99 = ms[Math.min(ms.length - 1, Math.ceil(ms.length * 0.99) - 1)];
      const statuses = Object.entries(results.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {})).map(([k, v]) => `${v} x ${k}`).join(", ");
      const honest = results.every((r) => r.status === 200 || (r.status === 503 && r.retryAfter));
      const decodes = results.filter((r) => /decode;dur=/.test(r.timing)).length;
      rows.push([name, String(results.length), statuses, honest ? "yes" : "NO", String(decodes), fmtMB(peak), peak <= LIMIT ? "yes" : "NO", fmtMs(median(ms)), fmtMs(p99)]);
      log(`  concurrency ${name}: ${statuses}, peak RSS above baseline ${fmtMB(peak)}, p50 ${fmtMs(median(ms))}`);
      return results;
    };
    const mixed = SMOKE
      ? ["/c/heic_400_0.heic?caplist=webp", "/c/p12_300_0.jpg?caplist=jpg"]
      : ["/c/p12_1200_0.jpg?caplist=webp", "/c/heic_800_0.heic?caplist=avif", "/c/p24_1200_0.jpg?caplist=jpg", "/c/p12_400_400.jpg?caplist=avif", "/c/heic.heic?caplist=jpg", "/c/p24_600_0.jpg?caplist=webp", "/c/heic_300_300.heic?caplist=webp", "/c/p12.jpg?caplist=avif,webp,jpg"];
    // Single flight first: after the mixed phase the queue consumer is still producing the
    // variants it deferred, in this same isolate and under the same memory gate.
    const same = await phase("8 concurrent requests for one uncached variant (HEIC -> 640w WebP)", Array.from({ length: SMOKE ? 2 : 8 }, () => "/c/heic_640_0.heic?caplist=webp"), true);
    if (!same.every((r) => r.status !== 200 || r.body.equals(same[0].body))) throw new Error("single flight: bodies differ");
    await phase("8 concurrent mixed (12 MP JPEG, 12 MP HEIC, 24 MP JPEG; WebP/AVIF/JPEG; thumbnails and full size)", mixed, true);
    const sources = ["c/p12_%d_0.jpg?caplist=webp", "c/heic_%d_0.heic?caplist=jpg", "c/p24_%d_0.jpg?caplist=webp"];
    const sequential = Array.from({ length: SMOKE ? 3 : 50 }, (_, i) => "/" + sources[i % 3].replace("%d", String(500 + i)));
    await phase("50 sequential uncached jobs", sequential, false);
  } finally {
    await stopAndClean(worker, persist);
  }
  sections.push(
    table(
      "5. Under load with the production memory settings: admission, single flight, status codes",
      ["phase", "requests", "statuses", "only 200 or 503+Retry-After", "responses that decoded", "peak RSS above post-GC baseline", "<= 128 MiB", "p50", "p99"],
      rows,
      "One fresh workerd with the default MEMORY_BUDGET_MB (112), ADMISSION_WAIT_MS and MEMORY_RELEASE_MS; codecs warmed by small jobs first; peak RSS is VmHWM over the phase (reset before it) minus VmRSS after a GC forced through the inspector. Latency is per request, client side.",
    ),
  );
}

/**
 * 7. What a stream of users meets, with the defaults of wrangler.toml (memory budget, release
 * delay, write-back, queue consumer in the same isolate): a phone scrolling uncached camera
 * photos back to back against each photo alone, the formats of one 12 MP photo in that stream
 * against sharp, concurrent thumbnails, a herd on one variant, and a thumbnail right after a
 * full-size view of an iPhone HEIC. Peak RSS from outside over the whole section.
 */
async function streamSection() {
  const persist = mkdtempSync(join(tmpdir(), "bench-stream-"));
  // wrangler.toml's [vars] as they stand, plus the API token and the peak header for the table.
  const worker = await startWrangler({ port: 8794, vars: { API_TOKENS: TOKEN }, persistTo: persist, inspectorPort: 9243 });
  const rows = [];
  const notes = [];
  try {
    const push = async (key, bytes) => {
      const res = await fetch(`${worker.base}/_api/objects/${key}`, { method: "PUT", body: bytes, headers: { Authorization: `Bearer ${TOKEN}` } });
      if (res.status !== 201) throw new Error(`push ${key}: ${res.status} ${await res.text()}`);
    };
    // A request with no answer in 120 s is counted as such (status "unanswered"), never waited
    // for longer, and the dev server's log around it is printed.
    let unanswered = 0;
    const get = async (path, headers = {}) => {
      const started = performance.now();
      try {
        const { ms, value: res } = await timed(() => fetch(`${worker.base}${path}`, { headers, signal: AbortSignal.timeout(120_000) }));
        const body = Buffer.from(await res.arrayBuffer());
        return { ms, status: res.status, type: res.headers.get("Content-Type"), tried: res.headers.get("X-Image-Tried"), timing: res.headers.get("Server-Timing") ?? "", retryAfter: res.headers.get("Retry-After"), body };
      } catch (e) {
        if (e.name !== "TimeoutError") throw e;
        unanswered++;
        log(`  stream: ${path} unanswered after 120 s; wrangler dev's log ends:\n${worker.log().split("\n").filter((l) => !/getaddrinfo|GetAddrInfo|Request.cf/.test(l)).slice(-40).join("\n")}`);
        return { ms: performance.now() - started, status: "unanswered", type: null, tried: null, timing: "", retryAfter: null, body: Buffer.alloc(0) };
      }
    };
    const waitOf = (r) => Number(/wait;dur=([\d.]+)/.exec(r.timing)?.[1] ?? 0);
    // Ten camera photos of 12-24 MP: the corpus's four, and crops and mirrors of them (new
    // files, so nothing is shared but the codecs).
    const p24 = photo(PHOTO_24MP);
    const p12 = photo(PHOTO_12MP);
    const others = SMOKE ? [] : ["jon-tyson-FKkK1hnTe-Q-unsplash.jpg", "seondol-son-skcD9ONunJw-unsplash.jpg"].map(photo);
    const cameraJpeg = (img) => img.jpeg({ quality: 92 }).toBuffer();
    const photos = SMOKE
      ? [p12, await cameraJpeg(sharp(p12).flop())]
      : [
          p24,
          p12,
          ...others,
          await cameraJpeg(sharp(p24).extract({ left: 0, top: 0, width: 5000, height: 3500 })),
          await cameraJpeg(sharp(p24).extract({ left: 1000, top: 500, width: 4500, height: 3000 }).flop()),
          await cameraJpeg(sharp(p12).flop()),
          await cameraJpeg(sharp(others[0]).extract({ left: 200, top: 100, width: 3600, height: 2700 })),
          await cameraJpeg(sharp(others[1]).flip()),
          await cameraJpeg(sharp(p24).resize(5200, 3467)),
        ];
    for (const [i, bytes] of photos.entries()) await push(`s/p${i}.jpg`, bytes);
    // Codecs compiled first (once per isolate), on a small photo.
    await push("s/small.jpg", await sharp(readFileSync(join(ROOT, "samples/parrots.png"))).jpeg().toBuffer());
    for (const f of ["webp", "avif", "jpg"]) await get(`/s/small_64_0.jpg?caplist=${f}`);
    await forceGc(worker.inspectorPort);
    const base = workerdMemory(worker.child.pid).rss;
    resetPeak(worker.child.pid);
    const CAPLIST = "caplist=avif,webp,jpg";
    const quiet = () => new Promise((r) => setTimeout(r, 6_000));

    // a. Each photo alone: the isolate idle for longer than MEMORY_RELEASE_MS before it.
    const alone = [];
    for (const [i] of photos.entries()) {
      await quiet();
      const r = await get(`/s/p${i}_1200_0.jpg?${CAPLIST}`);
      if (r.status !== 200) log(`  stream: p${i} alone answered ${r.status} ${r.tried}`);
      alone.push(r.ms);
    }
    // b. The same photos back to back, at another width (uncached), as a phone scrolls.
    await quiet();
    const stream = [];
    for (const [i] of photos.entries()) stream.push(await get(`/s/p${i}_1199_0.jpg?${CAPLIST}`));
    const sharpAvif = [];
    for (const bytes of photos) sharpAvif.push((await timed(() => sharpEncode(sharp(bytes).resize(1199), "avif").toBuffer())).ms);
    const streamMs = stream.map((r) => r.ms);
    rows.push([
      `${photos.length} uncached 12-24 MP photos -> 1200w (AVIF), back to back`,
      statusesOf(stream),
      fmtMs(median(streamMs)),
      `${fmtMs(median(alone))} (each alone)`,
      ratio(median(streamMs), median(alone)),
      `sharp ${fmtMs(median(sharpAvif))}: ${ratio(median(streamMs), median(sharpAvif))}`,
      fmtMs(Math.max(...stream.map(waitOf))),
    ]);
    // c. The formats of one 12 MP photo in the stream: each job right after another.
    for (const f of ["avif", "webp", "jpg"]) {
      const worker = [];
      const native = [];
      const statuses = [];
      let longestWait = 0;
      for (let run = 0; run < (SMOKE ? 1 : 3); run++) {
        const w = 1198 - run * 3 - ["avif", "webp", "jpg"].indexOf(f);
        // Another photo's job just before, as in a scroll.
        await get(`/s/p${(run + 2) % photos.length}_${w}_0.jpg?${CAPLIST}`);
        const r = await get(`/s/p1_${w}_0.jpg?caplist=${f}`);
        statuses.push(r);
        longestWait = Math.max(longestWait, waitOf(r));
        worker.push(r.ms);
        native.push((await timed(() => sharpEncode(sharp(p12).resize(w), f).toBuffer())).ms);
      }
      rows.push([`12 MP -> 1200w ${f}, right after another photo's AVIF`, statusesOf(statuses), fmtMs(median(worker)), `sharp ${fmtMs(median(native))}`, ratio(median(worker), median(native)), "-", fmtMs(longestWait)]);
    }
    // d. Eight thumbnails of eight photos at once.
    const thumbs = await Promise.all(photos.slice(0, 8).map((_, i) => get(`/s/p${i}_300_0.jpg?${CAPLIST}`)));
    const thumbMs = thumbs.map((r) => r.ms);
    rows.push([`${thumbs.length} concurrent thumbnails (300w) of different photos`, statusesOf(thumbs), fmtMs(median(thumbMs)), "-", "-", `slowest ${fmtMs(Math.max(...thumbMs))}`, fmtMs(Math.max(...thumbs.map(waitOf)))]);
    // e. A herd: eight requests for one uncached variant, against one alone.
    const one = await get(`/s/p1_640_0.jpg?${CAPLIST}`);
    const herd = await Promise.all(Array.from({ length: 8 }, () => get(`/s/p1_641_0.jpg?${CAPLIST}`)));
    const herdMs = herd.map((r) => r.ms);
    rows.push(["8 concurrent requests for one uncached variant (640w)", statusesOf(herd), fmtMs(median(herdMs)), `${fmtMs(one.ms)} (one alone)`, `slowest ${ratio(Math.max(...herdMs), one.ms)}`, "-", fmtMs(Math.max(...herd.map(waitOf)))]);
    // f. An iPhone HEIC viewed full size (a full-size AVIF made in the request, the WebP
    // deferred to the queue consumer of this isolate), then a thumbnail of it at once.
    const heic = existsSync(join(CORPORA, "heic/pillow_heif-iphone/PUG1.HEIC")) ? readFileSync(join(CORPORA, "heic/pillow_heif-iphone/PUG1.HEIC")) : readFileSync(join(ROOT, "samples/pug.heic"));
    const heicRuns = [];
    for (let run = 0; run < (SMOKE ? 1 : 3); run++) {
      await push(`s/heic${run}.heic`, heic);
      const full = await get(`/s/heic${run}.heic`, { Accept: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8" });
      const thumb = await get(`/s/heic${run}_700_0.jpg?caplist=avif`);
      heicRuns.push({ full, thumb });
    }
    rows.push([
      "thumbnail (700w AVIF) right after a full-size view of an iPhone HEIC",
      heicRuns.map((r) => `${r.full.status}/${r.thumb.status}`).join(", "),
      fmtMs(median(heicRuns.map((r) => r.thumb.ms))),
      `full size ${fmtMs(median(heicRuns.map((r) => r.full.ms)))}`,
      "-",
      `slowest thumbnail ${fmtMs(Math.max(...heicRuns.map((r) => r.thumb.ms)))}`,
      fmtMs(Math.max(...heicRuns.map((r) => waitOf(r.thumb)))),
    ]);
    const peak = workerdMemory(worker.child.pid).hwm - base;
    notes.push(`Peak RSS over the section, above the post-GC baseline: ${fmtMB(peak)} (${peak <= LIMIT ? "within" : "OVER"} 128 MiB).`);
    notes.push(`Requests unanswered within 120 s: ${unanswered}.`);
    log(`  stream: back to back ${fmtMs(median(streamMs))} vs alone ${fmtMs(median(alone))}; peak RSS ${fmtMB(peak)}`);
  } finally {
    await stopAndClean(worker, persist);
  }
  sections.push(
    table(
      "7. A stream of requests, wrangler.toml's defaults",
      ["what", "statuses", "median", "baseline", "ratio", "vs sharp / slowest", "longest wait (Server-Timing)"],
      rows,
      `One wrangler dev with the [vars] of wrangler.toml (MEMORY_BUDGET_MB 112, MEMORY_RELEASE_MS 5000, AVIF written back to R2, the queue consumer in the same isolate); codecs compiled first on a small photo. 'Each alone': the same photos with the isolate idle for 6 s before each (longer than MEMORY_RELEASE_MS). sharp: one libvips thread in this Node process, the same widths and settings. ${notes.join(" ")}`,
    ),
  );
}

/** Stops a wrangler dev and removes its state, once its files are closed. */
async function stopAndClean(worker, persist) {
  worker.stop();
  await new Promise((r) => setTimeout(r, 500));
  rmSync(persist, { recursive: true, force: true });
}

const statusesOf = (results) => Object.entries(results.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {})).map(([k, v]) => `${v} x ${k}`).join(", ");

async function cacheHitSection(push, get, worker, bare) {
  const key = "bench/hit";
  await push(`${key}.jpg`, await sharp(photo(PHOTO_12MP)).resize(1600).jpeg({ quality: 90 }).toBuffer());
  const path = `/${key}_400_0.jpg?caplist=webp`;
  const first = await get(path);
  const hit = await get(path);
  if (hit.res.headers.get("X-Image-Source") !== "cache") throw new Error(`cache not primed: ${hit.res.headers.get("X-Image-Source")}`);
  await fetch(`${bare.base}/`, { method: "PUT", body: first.body, headers: { "Content-Type": "image/webp" } });
  const bareCheck = Buffer.from(await (await fetch(`${bare.base}/`)).arrayBuffer());
  if (!bareCheck.equals(hit.body)) throw new Error("bare worker does not serve the same bytes");

  // R2 operations per hit, from Server-Timing (every R2 call of the lookup chain is counted there).
  let r2Ops = 0;
  const samples = SMOKE ? 5 : 50;
  for (let i = 0; i < samples; i++) {
    const st = (await get(path)).res.headers.get("Server-Timing") ?? "";
    const m = /r2;[^,]*desc="(\d+) op/.exec(st);
    r2Ops += m ? Number(m[1]) : 0;
  }

  const duration = SMOKE ? 2 : 10;
  const connections = SMOKE ? 2 : 10;
  const load = (url) => autocannon({ url, connections, duration, pipelining: 1 });
  const image = await load(`${worker.base}${path}`);
  const baseline = await load(`${bare.base}/`);
  const rows = [
    ["requests/s (mean)", image.requests.average.toFixed(0), baseline.requests.average.toFixed(0), ratio(image.requests.average, baseline.requests.average)],
    ["latency p50", fmtMs(image.latency.p50), fmtMs(baseline.latency.p50), ratio(image.latency.p50, baseline.latency.p50)],
    ["latency p99", fmtMs(image.latency.p99), fmtMs(baseline.latency.p99), ratio(image.latency.p99, baseline.latency.p99)],
    ["non-2xx responses", String(image.non2xx), String(baseline.non2xx), ""],
    ["R2 operations per hit", `${r2Ops / samples} (over ${samples} hits)`, "0", ""],
  ];
  log(`  cache hit: ${image.requests.average.toFixed(0)} req/s vs bare ${baseline.requests.average.toFixed(0)} req/s; R2 ops per hit ${r2Ops / samples}`);
  if (r2Ops !== 0) throw new Error(`cache hits performed ${r2Ops} R2 operations`);
  sections.push(
    table(
      `3. Cache-hit path: ${connections} connections for ${duration} s on loopback (autocannon)`,
      ["metric", "image worker", "bare worker (baseline)", "image/bare"],
      rows,
      `Same ${fmtKB(hit.body.length)} WebP from the same Cache API; the bare worker only does caches.default.match. The difference is the cost of routing, key parsing, negotiation and headers. Both run in one local workerd each on this 2-core machine, with autocannon on the same cores.`,
    ),
  );
}

/** Lowest mean of a list, formatted. */
const meanOf = (xs, digits) => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(digits) : "n/a");

/**
 * 4. Bytes at the calibrated quality target (issue 16): the worker's default outputs (AVIF at
 * its fast on-demand speed, WebP, JPEG), the AVIF the background re-encode leaves in R2, and a
 * mozjpeg JPEG at the target's own quality (the reference the ladder was calibrated against),
 * each scored by SSIM and butteraugli against the exact pixels encoded.
 */
async function bytesSection(push, get) {
  const sets = SMOKE
    ? [{ name: "repo samples", dir: join(ROOT, "samples"), size: "_600_0" }]
    : [
        { name: "photos/kodak", dir: join(CORPORA, "photos/kodak"), size: "" },
        { name: "photos/unsplash (1200w)", dir: join(CORPORA, "photos/unsplash"), size: "_1200_0" },
      ];
  // Butteraugli is Debian's CLI: required for the real run, optional for the smoke check.
  const butter = hasButteraugli();
  if (!butter && !SMOKE) throw new Error("the bytes section needs butteraugli: apt-get install butteraugli");
  const rows = [];
  const plot = [];
  const kinds = ["jpg-ref", "avif-fast", "avif-reencoded", "webp", "jpg"];
  for (const set of sets) {
    let files = readdirSync(set.dir).filter((f) => /\.(png|jpg)$/.test(f)).sort();
    if (SMOKE) files = files.slice(0, 1);
    const acc = Object.fromEntries(kinds.map((k) => [k, { bytes: 0, ssim: [], butteraugli: [], ms: [] }]));
    let replaced = 0;
    for (const [i, file] of files.entries()) {
      const ext = file.endsWith(".png") ? "png" : "jpg";
      const key = `bench/bytes/${set.name.split(/[/ ]/)[1]}${i}`;
      await push(`${key}.${ext}`, readFileSync(join(set.dir, file)));
      // The reference is exactly what the encoders were given: the worker's own lossless PNG.
      const refPixels = await rgba((await get(`/${key}${set.size}.${ext}?caplist=png`)).body);
      const ref = await reference(refPixels);
      const add = async (kind, bytes, ms) => {
        const s = await ref.score(bytes, { butteraugli: butter });
        acc[kind].bytes += bytes.length;
        acc[kind].ssim.push(s.ssim);
        if (butter) acc[kind].butteraugli.push(s.butteraugli);
        acc[kind].ms.push(ms);
        return s;
      };
      const served = {};
      for (const format of ["avif", "webp", "jpg"]) {
        const { res, body } = await get(`/${key}${set.size}.${ext}?caplist=${format}`);
        if (res.status !== 200) throw new Error(`${file} ${format}: ${res.status} ${res.headers.get("X-Image-Tried")}`);
        const encodeMs = Number(/encode;dur=([\d.]+)/.exec(res.headers.get("Server-Timing") ?? "")?.[1] ?? NaN);
        served[format] = { body, score: await add(format === "avif" ? "avif-fast" : format, body, encodeMs) };
      }
      const jref = await timed(async () => Buffer.from(await encodeWith("mozjpeg", refPixels, DEFAULT_LEVEL)));
      await add("jpg-ref", jref.value, jref.ms);
      // The re-encode's rule (jobs/reencode): the slow AVIF replaces the fast one only when
      // smaller at no lower SSIM (the worker's own SSIM differs slightly from ssim.js's).
      const slow = await timed(async () => Buffer.from(await encodeWith("avif", refPixels, LADDER.avifSlow, REENCODE_SPEED)));
      const slowScore = await ref.score(slow.value, { butteraugli: false });
      const keep = slow.value.length < served.avif.body.length && slowScore.ssim >= served.avif.score.ssim - 0.0005;
      if (keep) replaced++;
      await add("avif-reencoded", keep ? slow.value : served.avif.body, slow.ms);
      ref.dispose();
      log(`  bytes ${set.name} ${file}: avif ${fmtKB(acc["avif-fast"].bytes)} -> ${fmtKB(acc["avif-reencoded"].bytes)}, webp ${fmtKB(acc.webp.bytes)}, jpg ${fmtKB(acc.jpg.bytes)}, ref ${fmtKB(acc["jpg-ref"].bytes)} (running totals)`);
    }
    const label = {
      "jpg-ref": `mozjpeg q${DEFAULT_LEVEL} (reference)`,
      "avif-fast": `AVIF q${LADDER.avifFast} cpu-used 8 (served first)`,
      "avif-reencoded": `AVIF after re-encode (q${LADDER.avifSlow} cpu-used ${REENCODE_SPEED}; replaced ${replaced}/${files.length})`,
      webp: `WebP q${LADDER.webp} method 4`,
      jpg: `JPEG q${LADDER.jpg} (served)`,
    };
    for (const k of kinds) {
      const a = acc[k];
      rows.push([set.name, label[k], fmtKB(a.bytes), meanOf(a.ssim, 4), meanOf(a.butteraugli, 3), ratio(a.bytes, acc["jpg-ref"].bytes), ratio(a.bytes, acc.webp.bytes), fmtMs(median(a.ms))]);
    }
    plot.push({ set: set.name, served: { avif: acc["avif-fast"].bytes / acc["jpg-ref"].bytes, webp: acc.webp.bytes / acc["jpg-ref"].bytes }, matched: { avif: acc["avif-reencoded"].bytes / acc["jpg-ref"].bytes, webp: acc.webp.bytes / acc["jpg-ref"].bytes } });
  }
  sections.push(
    table(
      `4. Bytes at the calibrated quality target (QUALITY_LEVEL ${DEFAULT_LEVEL}: as good as a mozjpeg q${DEFAULT_LEVEL} JPEG by SSIM and butteraugli)`,
      ["set", "output", "total bytes", "mean SSIM", "mean butteraugli", "vs JPEG reference (baseline)", "vs WebP", "encode time (median)"],
      rows,
      "SSIM (ssim.js) and butteraugli (Debian's CLI; lower is better) against the exact pixels the encoders received (the worker's lossless PNG of the same variant). Served outputs come from the worker over HTTP with its defaults (encode time: its Server-Timing). The reference JPEG and the re-encode run in Node with the same @jsquash builds and settings the worker uses (a deterministic encoder: the same bytes), the re-encode's keep rule applied per image. Goals (issue 16): after re-encode AVIF <= 0.70x WebP and <= 0.45x the reference; fast AVIF <= 0.80x WebP. Anchor: iQIYI saw AVIF 38% smaller than WebP.",
    ),
  );
  writeFileSync(join(ROOT, "bench/results", SMOKE ? "smoke-bytes.svg" : "bytes.svg"), barChart(plot));
}

/** A small grouped bar chart of byte ratios vs JPEG (SVG, no dependency). */
function barChart(plot) {
  const groups = plot.flatMap((p) => [
    { label: `${p.set} first view`, avif: p.served.avif, webp: p.served.webp },
    { label: `${p.set} re-encoded`, avif: p.matched.avif, webp: p.matched.webp },
  ]);
  const W = 760;
  const H = 330;
  const left = 90;
  const bottom = 250;
  const scale = 200;
  const gw = (W - left - 20) / groups.length;
  const bars = groups
    .map((g, i) => {
      const x = left + i * gw + gw * 0.15;
      const bw = gw * 0.3;
      const bar = (v, dx, colour) =>
        `<rect x="${(x + dx).toFixed(1)}" y="${(bottom - v * scale).toFixed(1)}" width="${bw.toFixed(1)}" height="${(v * scale).toFixed(1)}" fill="${colour}"/><text x="${(x + dx + bw / 2).toFixed(1)}" y="${(bottom - v * scale - 4).toFixed(1)}" font-size="11" text-anchor="middle">${v.toFixed(2)}</text>`;
      return `${bar(g.avif, 0, "#3b82f6")}${bar(g.webp, bw, "#f59e0b")}<text x="${(x + bw).toFixed(1)}" y="${bottom + 16}" font-size="10" text-anchor="middle">${g.label.replace("photos/", "")}</text>`;
    })
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" font-size="14" text-anchor="middle">Bytes relative to JPEG (lower is better)</text>
<line x1="${left}" y1="${bottom - scale}" x2="${W - 20}" y2="${bottom - scale}" stroke="#999" stroke-dasharray="4"/>
<text x="${left - 6}" y="${bottom - scale + 4}" font-size="11" text-anchor="end">1.0 (JPEG ref)</text>
<line x1="${left}" y1="${bottom}" x2="${W - 20}" y2="${bottom}" stroke="#333"/>
${bars}
<rect x="${W - 230}" y="${H - 36}" width="12" height="12" fill="#3b82f6"/><text x="${W - 212}" y="${H - 26}" font-size="12">AVIF / JPEG</text>
<rect x="${W - 120}" y="${H - 36}" width="12" height="12" fill="#f59e0b"/><text x="${W - 102}" y="${H - 26}" font-size="12">WebP / JPEG</text>
</svg>
`;
}

async function writeReport() {
  const pkg = (name) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  const cpu = cpus()[0]?.model ?? "unknown";
  const machine = [
    `- Machine: ${cpus().length} x ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${process.arch}`,
    `- Node ${process.version}; wrangler ${pkg("wrangler")}; workerd ${pkg("workerd")}; sharp ${pkg("sharp")} (libvips ${sharp.versions.vips}, aom ${sharp.versions.aom}, webp ${sharp.versions.webp}, mozjpeg ${sharp.versions.mozjpeg})`,
    `- Worker codecs: our libjpeg-turbo 2.1.5 build (JPEG decode and encode), our libwebp 1.2.4 builds (WebP decode, encode, animation), our libaom SIMD builds (3.12.1: AVIF encode; 3.6.0: animated AVIF decode), @jsquash/avif ${pkg("@jsquash/avif")} (AVIF decode), @jsquash/png ${pkg("@jsquash/png")}, libheif-js ${pkg("libheif-js")}; the JPEG reference: mozjpeg (@jsquash/jpeg ${pkg("@jsquash/jpeg")})`,
    `- Date: ${new Date().toISOString()}; total bench time ${((Date.now() - started) / 1000).toFixed(0)} s${SMOKE ? " (smoke mode: tiny inputs, numbers not meaningful)" : ""}`,
  ].join("\n");
  const howTo = [
    "How to read it: every figure stands next to a baseline measured in the same run on the same inputs, and the ratio column divides the first by the second.",
    "Absolute times depend on this machine and on what else ran; the ratios are what to compare between runs. Nothing here is asserted by `npm test`.",
  ].join(" ");
  const plot = SOAK ? [] : [`![bytes](./${SMOKE ? "smoke-bytes.svg" : "bytes.svg"})`];
  const report = [`# Benchmark report${SMOKE ? " (smoke)" : ""}`, "", machine, "", howTo, "", ...sections.flatMap((s) => [s, ""]), ...plot, ""].join("\n");
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  // A partial run (--only) never replaces the full report.
  const file = join(ROOT, "bench/results", SMOKE ? "smoke-report.md" : SOAK ? "soak-report.md" : ONLY ? "partial-report.md" : "report.md");
  writeFileSync(file, report);
  log(`\n${report}\nReport written to ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
