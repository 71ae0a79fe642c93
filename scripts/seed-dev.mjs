#!/usr/bin/env node
// Seeds wrangler dev's local R2 with the sample photos that ship in samples/ (a camera JPEG, a
// PNG photo, a PNG with alpha, an iPhone HEIC), then prints URLs that work. `npm run dev` runs
// it before `wrangler dev`; the e2e test imports `seedSamples` and requests every URL it lists.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const bucket = "edge-image-cdn-images";

/** Key in local R2, file in the repo, Content-Type. */
export const SAMPLES = [
  ["samples/parrots.png", "samples/parrots.png", "image/png"],
  ["samples/street.jpg", "samples/street.jpg", "image/jpeg"],
  ["samples/transparent.png", "samples/transparent.png", "image/png"],
  // An iPhone original: served to HEIC clients as it is, transcoded for everyone else.
  ["samples/pug.heic", "samples/pug.heic", "image/heic"],
];

/** Paths every one of which answers 200 image/* once the samples are seeded, and what each shows. */
export const SAMPLE_URLS = [
  ["/samples/parrots.png", "your browser's Accept decides: AVIF in Chrome, WebP in Safari 15"],
  ["/samples/parrots.png?caplist=avif,webp,jpg", "a phone app's caplist"],
  ["/samples/parrots_400_400.jpg?caplist=webp", "resized and cropped to 400x400"],
  ["/samples/street_600_0.jpg", "a 5 MP camera JPEG, 600 wide"],
  ["/samples/transparent.png?caplist=webp,jpg", "alpha kept: WebP, never a flattened JPEG"],
  ["/samples/pug_800_0.jpg?caplist=webp,jpg", "an iPhone HEIC, 800 wide, for an app that cannot decode HEIC"],
  ["/samples/pug.heic?caplist=heic", "the HEIC original, byte for byte, for a client that decodes it"],
];

/** Puts every sample into local R2 (wrangler's `--local` store, or `persistTo`). */
export function seedSamples({ persistTo, quiet = false } = {}) {
  for (const [key, file, contentType] of SAMPLES) {
    execFileSync(
      process.execPath,
      [join(root, "node_modules/wrangler/bin/wrangler.js"), "r2", "object", "put", `${bucket}/${key}`, `--file=${join(root, file)}`, `--content-type=${contentType}`, "--local", ...(persistTo ? [`--persist-to=${persistTo}`] : [])],
      { cwd: root, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    if (!quiet) console.log(`  seeded ${key}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // The push API needs a token: give a fresh clone the documented development one.
  if (!existsSync(join(root, ".dev.vars"))) {
    copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
    console.log("Created .dev.vars from .dev.vars.example (API token for /_api/).");
  }
  console.log("Seeding local R2 (wrangler dev's .wrangler/state)...");
  seedSamples();
  const base = "http://127.0.0.1:8787";
  const width = Math.max(...SAMPLE_URLS.map(([p]) => p.length)) + base.length + 2;
  console.log(`\nSeeded ${SAMPLES.length} sample images. Once wrangler says it is ready, try:\n`);
  console.log(`  ${`${base}/_demo?key=samples/parrots.png`.padEnd(width)}the playground: one image, several clients`);
  for (const [path, what] of SAMPLE_URLS) console.log(`  ${`${base}${path}`.padEnd(width)}${what}`);
  console.log(`\n  Push your own:  curl -X PUT --data-binary @photo.jpg -H 'Authorization: Bearer dev-token-0123456789abcdef' ${base}/_api/objects/covers/a1.jpg\n`);
}
