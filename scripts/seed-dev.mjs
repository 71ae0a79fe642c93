#!/usr/bin/env node
// Seeds wrangler dev's local R2 with a few sample images so `npm run dev` has something to
// show, then prints example URLs. Uses ../shared/corpora/photos when present; otherwise it
// writes a generated PNG so a fresh clone still has a picture to serve.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const corpora = resolve(root, "../shared/corpora");
const bucket = "edge-image-cdn-images";

const samples = [
  ["samples/parrots.png", "photos/kodak/kodim23.png", "image/png"],
  ["samples/lighthouse.png", "photos/kodak/kodim21.png", "image/png"],
  ["samples/street.jpg", "photos/unsplash/mike-castro-demaria-94BUerwdFP8-unsplash.jpg", "image/jpeg"],
  // A HEIC is only ever pre-produced by an origin: this one is served to `caplist=heic,...`.
  ["samples/example.heic", "heic/libheif/example.heic", "image/heic"],
];

/** A 512x341 gradient PNG, written with zlib alone (PNG spec: IHDR, IDAT, IEND). */
function generatedPng() {
  const w = 512, h = 341;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const i = y * (w * 3 + 1) + 1 + x * 3;
      raw[i] = (x * 255) / w;
      raw[i + 1] = (y * 255) / h;
      raw[i + 2] = 160;
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function put(key, file, contentType) {
  execFileSync(
    process.execPath,
    [join(root, "node_modules/wrangler/bin/wrangler.js"), "r2", "object", "put", `${bucket}/${key}`, `--file=${file}`, `--content-type=${contentType}`, "--local"],
    { cwd: root, stdio: ["ignore", "ignore", "inherit"] },
  );
  console.log(`  seeded ${key}`);
}

// The push API needs a token: give a fresh clone the documented development one.
if (!existsSync(join(root, ".dev.vars"))) {
  copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
  console.log("Created .dev.vars from .dev.vars.example (API token for /_api/).");
}

console.log("Seeding local R2 (wrangler dev's .wrangler/state)...");
let seeded = 0;
for (const [key, rel, type] of samples) {
  const file = join(corpora, rel);
  if (!existsSync(file)) continue;
  put(key, file, type);
  seeded++;
}
const gen = join(mkdtempSync(join(tmpdir(), "seed-")), "gradient.png");
writeFileSync(gen, generatedPng());
put("samples/gradient.png", gen, "image/png");

const base = "http://127.0.0.1:8787";
console.log(`
Seeded ${seeded + 1} images. Try, once wrangler says it is ready:
  ${base}/_demo?key=samples/parrots.png             (the playground: one image, several clients)
  ${base}/samples/gradient.png                      (your browser's Accept decides: AVIF in Chrome)
  curl -H 'Authorization: Bearer dev-token-0123456789abcdef' ${base}/_api/images/samples/gradient
  ${base}/samples/gradient_300_200.jpg?caplist=webp,jpg
  curl -sI '${base}/samples/gradient_0_120.png?caplist=avif'${seeded ? `
  ${base}/samples/parrots.png?caplist=avif,webp,jpg
  ${base}/samples/parrots_400_400.jpg?caplist=webp
  ${base}/samples/street_600_0.jpg                   (a 5 MP camera JPEG resized on demand)
  ${base}/samples/example.jpg?caplist=heic,jpg       (the origin's pre-produced HEIC, byte for byte)` : ""}
`);
