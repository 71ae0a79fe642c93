#!/usr/bin/env node
// `node bench/options.mjs`: does an encoder option pay for itself? (issue 16) Each option is
// compared with the worker's setting on every third Kodak photo, at three qualities around the
// calibrated default, and its mean bytes are interpolated to the baseline's scores: at equal
// SSIM and at equal butteraugli. An option is kept only if it saves bytes by both metrics.
// Writes bench/results/encoder-options.md. Needs ../shared/corpora and butteraugli.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { encodeRaw } from "./lib/codecs.mjs";
import { ladderRung } from "./lib/ladder.mjs";
import { hasButteraugli, reference, rgba } from "./lib/metrics.mjs";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const KODAK = resolve(ROOT, "../shared/corpora/photos/kodak");
if (!hasButteraugli()) throw new Error("needs butteraugli: apt-get install butteraugli");
const rung = ladderRung();
const ladder = { jpg: rung.jpg, avif: rung.avifFast, webp: rung.webp };

// What the worker sends (src/codecs/index.ts: @jsquash defaults + quality + speed) vs one change.
const OPTIONS = {
  avif: { base: { speed: 8 }, variants: { "tune=ssim": { tune: 2 }, "4:4:4 chroma": { subsample: 3 }, "sharpness=2": { sharpness: 2 }, chromaDeltaQ: { chromaDeltaQ: true }, "sharp YUV": { enableSharpYUV: true } } },
  webp: { base: { method: 4 }, variants: { use_sharp_yuv: { use_sharp_yuv: 1 }, "method 6": { method: 6 } } },
  jpg: { base: {}, variants: { "baseline (not progressive)": { progressive: false }, "no Huffman optimisation": { optimize_coding: false }, trellis_multipass: { trellis_multipass: true }, "trellis_opt_zero + opt_table": { trellis_opt_zero: true, trellis_opt_table: true } } },
};
const STEP = 6;

const files = readdirSync(KODAK).filter((f) => f.endsWith(".png")).sort().filter((_, i) => i % 3 === 0);
const acc = {};
for (const file of files) {
  const pixels = await rgba(readFileSync(join(KODAK, file)));
  const ref = await reference(pixels);
  for (const [format, { base, variants }] of Object.entries(OPTIONS)) {
    for (const [name, extra] of [["(worker's setting)", {}], ...Object.entries(variants)]) {
      for (const dq of [-STEP, 0, STEP]) {
        const quality = ladder[format] + dq;
        const t = performance.now();
        const bytes = await encodeRaw(format, pixels, { ...base, ...extra, quality });
        const ms = performance.now() - t;
        const s = await ref.score(bytes);
        const slot = ((acc[format] ??= {})[name] ??= {})[dq] ??= { bytes: 0, ssim: 0, butteraugli: 0, ms: 0, n: 0 };
        slot.bytes += bytes.byteLength;
        slot.ssim += s.ssim;
        slot.butteraugli += s.butteraugli;
        slot.ms += ms;
        slot.n++;
      }
    }
  }
  ref.dispose();
  console.log(`${file} done`);
}

/** Mean bytes at which an option's (quality -> score) curve reaches `target`, linear between its three points. */
function bytesAt(points, metric, target) {
  const better = metric === "ssim" ? (a, b) => a >= b : (a, b) => a <= b;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (better(b[metric], target) && !better(a[metric], target)) return a.bytes + ((target - a[metric]) / (b[metric] - a[metric])) * (b.bytes - a.bytes);
    if (i === 1 && better(a[metric], target)) return a.bytes;
  }
  return null;
}

const rows = [];
for (const [format, byName] of Object.entries(acc)) {
  const mean = (name) => [-STEP, 0, STEP].map((dq) => { const s = byName[name][dq]; return { bytes: s.bytes / s.n, ssim: s.ssim / s.n, butteraugli: s.butteraugli / s.n, ms: s.ms / s.n }; });
  const basePts = mean("(worker's setting)");
  const target = basePts[1];
  for (const name of Object.keys(byName)) {
    const pts = mean(name);
    const bs = bytesAt(pts, "ssim", target.ssim);
    const bb = bytesAt(pts, "butteraugli", target.butteraugli);
    const r = (x) => (x === null ? "out of range" : `${(x / target.bytes).toFixed(3)}x`);
    rows.push(`| ${format} q${ladder[format]} | ${name} | ${(pts[1].bytes / 1024).toFixed(1)} KiB | ${pts[1].ssim.toFixed(4)} | ${pts[1].butteraugli.toFixed(3)} | ${r(bs)} | ${r(bb)} | ${(pts[1].ms / target.ms).toFixed(2)}x |`);
  }
}
const md = [
  "# Encoder options (node bench/options.mjs)",
  "",
  `${files.length} Kodak photos (every third), each option at the calibrated quality and ${STEP} either side; bytes interpolated to the worker's setting's mean scores. Below 1.000x by both metrics means the option saves bytes at equal quality.`,
  "",
  "| encoder | option | mean bytes at the default quality | mean SSIM | mean butteraugli | bytes at equal SSIM | bytes at equal butteraugli | encode time |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...rows,
  "",
].join("\n");
writeFileSync(join(ROOT, "bench/results/encoder-options.md"), md);
console.log(md);
