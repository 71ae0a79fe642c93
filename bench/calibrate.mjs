#!/usr/bin/env node
// `npm run calibrate`: chooses each format's default quality (issue 16). For every photo of
// ../shared/corpora/photos/kodak (as is) and photos/unsplash (at 1200w, the size the bench
// serves), each encoder is run over a grid of qualities with the worker's own codecs, and each
// output is scored against the exact pixels encoded, by SSIM and by butteraugli
// (bench/lib/metrics.mjs). A quality LEVEL L means "as good as a mozjpeg qL JPEG": for each
// format, set and metric the quality whose set-mean score equals the mozjpeg qL reference's is
// interpolated on the grid (scores are set means, both sets weighing the same), and the
// format's quality at level L is the higher of the two metrics' (it matches by both), rounded up.
//
//   node bench/calibrate.mjs --set=kodak      # grid for one set -> bench/results/calibration-kodak.json
//   node bench/calibrate.mjs --set=unsplash   # (the two can run side by side, one core each)
//   node bench/calibrate.mjs --derive         # both grids -> calibration.md and src/produce/quality-ladder.json
//
// The JPEG rung (our libjpeg-turbo build against the mozjpeg reference: the same coding family)
// and the WebP rung (our libwebp build, sharp YUV where colours meet, as the worker encodes) are
// matched by SSIMULACRA 2 (the guide's metric; ../shared/tools/ssimulacra2) when both grids
// hold it; the grid records it for those encoders (SSIMULACRA2_ENCODERS), and
// `--add-ssimulacra2` adds it to a grid measured without it (the encodes are deterministic).
//
// The grids take about 30 minutes per set on the reference machine (libaom at cpu-used 5 is
// most of it), so the ladder is committed and only re-derived when an encoder changes.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { encodeWith } from "./lib/codecs.mjs";
import { hasButteraugli, hasSsimulacra2, reference, rgba } from "./lib/metrics.mjs";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const CORPORA = resolve(ROOT, "../shared/corpora/photos");
const RESULTS = join(ROOT, "bench/results");

/** The levels the ladder offers (mozjpeg qualities a user may pick as the target). */
const LEVELS = [75, 80, 85, 90];
/** The encoders calibrated: what the worker runs on demand, and the background re-encode. */
const ENCODERS = {
  "jpg-ref": { format: "mozjpeg", qualities: LEVELS },
  // Our libjpeg-turbo build, progressive (the worker's default SPEED jpg:0).
  jpg: { format: "jpg", speed: 0, qualities: [70, 75, 80, 85, 90, 95] },
  "avif-fast": { format: "avif", speed: 8, qualities: [36, 44, 52, 60, 68, 76, 84, 90] },
  "avif-slow": { format: "avif", speed: 5, qualities: [44, 54, 64, 74, 84, 90] },
  webp: { format: "webp", speed: 4, qualities: [60, 68, 76, 80, 84, 87, 90, 96] },
};
/** The encoders whose points are also scored by SSIMULACRA 2. */
const SSIMULACRA2_ENCODERS = ["jpg-ref", "jpg", "webp"];
/** The encoders matched to the reference by SSIMULACRA 2 alone (when every point has it). */
const BY_SSIMULACRA2 = ["jpg", "webp"];
const SETS = {
  kodak: { dir: join(CORPORA, "kodak"), width: null },
  unsplash: { dir: join(CORPORA, "unsplash"), width: 1200 },
};

async function grid(setName) {
  const set = SETS[setName];
  if (!set) throw new Error(`--set must be one of ${Object.keys(SETS).join(", ")}`);
  if (!existsSync(set.dir)) throw new Error(`calibration needs ${set.dir}`);
  if (!hasButteraugli()) throw new Error("calibration needs butteraugli: apt-get install butteraugli");
  const files = readdirSync(set.dir).filter((f) => /\.(png|jpg)$/.test(f)).sort();
  // Points already measured (a previous run's file for the same photos) are kept, so widening
  // the grid only costs the new points.
  const path = join(RESULTS, `calibration-${setName}.json`);
  const before = existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : null;
  const reuse = before && JSON.stringify(before.files) === JSON.stringify(files) && before.width === set.width;
  const out = { set: setName, width: set.width, files, encoders: {} };
  for (const [name, enc] of Object.entries(ENCODERS)) {
    out.encoders[name] = Object.fromEntries(enc.qualities.map((q) => [q, reuse && before.encoders[name]?.[q]?.length === files.length ? before.encoders[name][q] : []]));
  }
  for (const [index, file] of files.entries()) {
    const missing = Object.entries(ENCODERS).some(([name, enc]) => enc.qualities.some((q) => out.encoders[name][q].length <= index));
    if (!missing) continue;
    let img = sharp(readFileSync(join(set.dir, file))).rotate();
    if (set.width) img = img.resize(set.width);
    const pixels = await rgba(await img.png().toBuffer());
    const ref = await reference(pixels);
    for (const [name, enc] of Object.entries(ENCODERS)) {
      for (const q of enc.qualities) {
        if (out.encoders[name][q].length > index) continue;
        const t = performance.now();
        const bytes = await encodeWith(enc.format, pixels, q, enc.speed);
        const ms = performance.now() - t;
        const s = await ref.score(bytes);
        if (SSIMULACRA2_ENCODERS.includes(name) && hasSsimulacra2()) s.ssimulacra2 = await ref.ssimulacra2(bytes);
        out.encoders[name][q].push({ bytes: bytes.byteLength, ms, ...s });
      }
      console.log(`${setName} ${file} ${name} done`);
    }
    ref.dispose();
    writeFileSync(path, JSON.stringify(out));
  }
}

/** Scores a grid's JPEG points by SSIMULACRA 2 where they lack it, checking each encode gives the same bytes. */
async function addSsimulacra2(setName) {
  const set = SETS[setName];
  if (!hasSsimulacra2()) throw new Error("--add-ssimulacra2 needs ../shared/tools/ssimulacra2");
  const path = join(RESULTS, `calibration-${setName}.json`);
  const grid = JSON.parse(readFileSync(path, "utf8"));
  for (const [index, file] of grid.files.entries()) {
    let img = sharp(readFileSync(join(set.dir, file))).rotate();
    if (set.width) img = img.resize(set.width);
    const pixels = await rgba(await img.png().toBuffer());
    const ref = await reference(pixels);
    for (const name of SSIMULACRA2_ENCODERS) {
      for (const [q, points] of Object.entries(grid.encoders[name])) {
        const point = points[index];
        if (point.ssimulacra2 !== undefined) continue;
        const bytes = await encodeWith(ENCODERS[name].format, pixels, Number(q), ENCODERS[name].speed);
        if (bytes.byteLength !== point.bytes) throw new Error(`${file} ${name} q${q}: ${bytes.byteLength} bytes now, ${point.bytes} in the grid`);
        point.ssimulacra2 = await ref.ssimulacra2(bytes);
      }
    }
    ref.dispose();
    console.log(`${setName} ${file} SSIMULACRA 2 added`);
  }
  writeFileSync(path, JSON.stringify(grid));
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Set means per quality of one encoder: bytes, ms, ssim, butteraugli. */
function means(rows) {
  return Object.entries(rows)
    .map(([q, xs]) => ({ q: Number(q), bytes: mean(xs.map((x) => x.bytes)), ms: mean(xs.map((x) => x.ms)), ssim: mean(xs.map((x) => x.ssim)), butteraugli: mean(xs.map((x) => x.butteraugli)), ssimulacra2: mean(xs.map((x) => x.ssimulacra2)) }))
    .sort((a, b) => a.q - b.q);
}

/**
 * The quality at which the set-mean `metric` reaches `target` (linear between grid points),
 * and the mean bytes there; null when the grid never reaches it.
 */
function solve(points, metric, target) {
  const better = metric === "butteraugli" ? (v) => v <= target : (v) => v >= target;
  for (let i = 0; i < points.length; i++) {
    if (!better(points[i][metric])) continue;
    if (i === 0) return { q: points[0].q, bytes: points[0].bytes };
    const a = points[i - 1];
    const b = points[i];
    const f = (target - a[metric]) / (b[metric] - a[metric]);
    return { q: a.q + f * (b.q - a.q), bytes: a.bytes + f * (b.bytes - a.bytes) };
  }
  return null;
}

/** Averages the per-quality set means of several sets (each set weighs the same). */
function pooled(perSet) {
  return perSet[0].map((p, i) => {
    const at = perSet.map((pts) => pts[i]);
    if (at.some((x) => x.q !== p.q)) throw new Error("sets were measured on different grids");
    const avg = (k) => mean(at.map((x) => x[k]));
    return { q: p.q, bytes: avg("bytes"), ms: avg("ms"), ssim: avg("ssim"), butteraugli: avg("butteraugli"), ssimulacra2: avg("ssimulacra2") };
  });
}

function derive() {
  const sets = Object.keys(SETS).map((s) => JSON.parse(readFileSync(join(RESULTS, `calibration-${s}.json`), "utf8")));
  const ladder = {};
  const rows = [];
  for (const level of LEVELS) {
    ladder[level] = {};
    const refs = sets.map((set) => means(set.encoders["jpg-ref"]).find((p) => p.q === level));
    const ref = { bytes: mean(refs.map((r) => r.bytes)), ssim: mean(refs.map((r) => r.ssim)), butteraugli: mean(refs.map((r) => r.butteraugli)), ssimulacra2: mean(refs.map((r) => r.ssimulacra2)) };
    for (const name of ["jpg", "avif-fast", "avif-slow", "webp"]) {
      const perSet = sets.map((set) => means(set.encoders[name]));
      const both = pooled(perSet);
      let q = 0;
      const metrics = BY_SSIMULACRA2.includes(name) && [ref.ssimulacra2, ...both.map((p) => p.ssimulacra2)].every(Number.isFinite) ? ["ssimulacra2"] : ["ssim", "butteraugli"];
      for (const metric of metrics) {
        const hit = solve(both, metric, ref[metric]);
        q = Math.max(q, hit ? hit.q : Infinity);
        // Each set on its own, for the record (not what the ladder uses).
        const single = sets.map((set, i) => solve(perSet[i], metric, refs[i][metric]));
        const fmt = (h) => (h ? h.q.toFixed(1) : "beyond grid");
        rows.push([level, name, metric, ref[metric].toFixed(metric === "ssim" ? 4 : metric === "ssimulacra2" ? 2 : 3), hit ? hit.q.toFixed(1) : "beyond grid", hit ? (hit.bytes / ref.bytes).toFixed(2) + "x" : "", ...single.map(fmt)]);
      }
      ladder[level][name] = Number.isFinite(q) ? Math.ceil(q) : Math.max(...ENCODERS[name].qualities);
    }
  }
  const md = [
    "# Quality calibration (npm run calibrate)",
    "",
    `Sets: ${sets.map((s) => `${s.set} (${s.files.length} photos${s.width ? `, at ${s.width}w` : ""})`).join(", ")}. Scores are set means, the two sets weighing the same. Each row: the quality at which the encoder's pooled score equals a mozjpeg JPEG's at the level's quality, by one metric (linear between grid points), and the pooled mean bytes there vs that JPEG; then the same for each set on its own, for the record. The ladder takes, per level and encoder, the higher of its two metrics' qualities, rounded up: the output matches the reference by both; the JPEG and WebP rungs are matched by SSIMULACRA 2 alone.`,
    "",
    `| level (mozjpeg q) | encoder | metric | reference score | quality matching it | bytes vs reference | ${sets.map((s) => `${s.set} alone`).join(" | ")} |`,
    `| --- | --- | --- | --- | --- | --- | ${sets.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    "## Ladder",
    "",
    "| level | jpg (libjpeg-turbo, progressive) | avif (on demand, cpu-used 8) | avif (re-encode, cpu-used 5) | webp (method 4) |",
    "| --- | --- | --- | --- | --- |",
    ...LEVELS.map((l) => `| ${l} | ${ladder[l].jpg} | ${ladder[l]["avif-fast"]} | ${ladder[l]["avif-slow"]} | ${ladder[l].webp} |`),
    "",
    "## Set means per quality",
    "",
    "| set | encoder | quality | mean bytes | mean SSIM | mean butteraugli | mean encode ms (Node) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...sets.flatMap((set) => Object.keys(ENCODERS).flatMap((name) => means(set.encoders[name]).map((p) => `| ${set.set} | ${name} | ${p.q} | ${(p.bytes / 1024).toFixed(1)} KiB | ${p.ssim.toFixed(4)} | ${p.butteraugli.toFixed(3)} | ${p.ms.toFixed(0)} |`))),
    "",
  ].join("\n");
  writeFileSync(join(RESULTS, "calibration.md"), md);
  // Data, not code: the worker imports it (src/produce/quality-ladder.ts) and the bench reads it.
  const rungs = Object.fromEntries(LEVELS.map((l) => [l, { jpg: ladder[l].jpg, avifFast: ladder[l]["avif-fast"], avifSlow: ladder[l]["avif-slow"], webp: ladder[l].webp }]));
  writeFileSync(join(ROOT, "src/produce/quality-ladder.json"), `${JSON.stringify({ levels: LEVELS, ladder: rungs }, null, 2)}\n`);
  console.log(md);
}

const setArg = process.argv.find((a) => a.startsWith("--set="))?.slice(6);
if (process.argv.includes("--add-ssimulacra2")) for (const s of Object.keys(SETS)) await addSsimulacra2(s);
else if (process.argv.includes("--derive")) derive();
else if (setArg) await grid(setArg);
else {
  for (const s of Object.keys(SETS)) await grid(s);
  derive();
}
