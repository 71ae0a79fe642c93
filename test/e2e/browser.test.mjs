// Real-browser test: Debian's Chromium (driven by playwright-core) against `wrangler dev` on
// loopback. A plain <img> of a JPEG key must arrive as AVIF because of Chromium's own Accept,
// every image of the playground must decode, and a screenshot is saved for a person to look at.
// Run with `npm run test:e2e` (needs /usr/bin/chromium: `apt-get install chromium`).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import sharp from "sharp";
import { startWrangler } from "../../scripts/lib/wrangler.mjs";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const ARTIFACTS = join(ROOT, "test/artifacts");
const TOKEN = "e2e-token-0123456789abcdef";
const PORT = 8795;

let worker;
let browser;
let persist;
let big;
let sticker;

before(async () => {
  persist = mkdtempSync(join(tmpdir(), "e2e-state-"));
  worker = await startWrangler({ port: PORT, vars: { API_TOKENS: TOKEN, DEMO_PAGE: "on" }, persistTo: persist });
  const kodim = readFileSync(resolve(ROOT, "samples/parrots.png"));
  const jpeg = await sharp(kodim).jpeg({ quality: 90 }).toBuffer();
  // A six-frame pan as an animated GIF.
  const frames = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => sharp(kodim).extract({ left: i * 20, top: i * 10, width: 160, height: 120 }).png().toBuffer()));
  const gif = await sharp(frames, { join: { animated: true } }).gif({ loop: 0, delay: [80, 80, 80, 80, 80, 80] }).toBuffer();
  // The pan cut out as a disc, 240x180, transparent outside (a sticker-like GIF).
  const disc = await Promise.all(
    [0, 1, 2, 3, 4, 5].map(async (f) => {
      const { data } = await sharp(kodim).extract({ left: f * 20, top: f * 10, width: 240, height: 180 }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      for (let i = 0; i < 240 * 180; i++) if (Math.hypot((i % 240) - 120, Math.floor(i / 240) - 90) > 82) data[i * 4 + 3] = 0;
      return sharp(data, { raw: { width: 240, height: 180, channels: 4 } }).png().toBuffer();
    }),
  );
  const discGif = await sharp(disc, { join: { animated: true } }).gif({ loop: 0, delay: [80, 80, 80, 80, 80, 80] }).toBuffer();
  // One 480x360 still cut out as a disc (transparent outside, opaque inside): a sticker PNG.
  {
    const { data } = await sharp(kodim).extract({ left: 100, top: 60, width: 480, height: 360 }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    for (let i = 0; i < 480 * 360; i++) if (Math.hypot((i % 480) - 240, Math.floor(i / 480) - 180) > 160) data[i * 4 + 3] = 0;
    sticker = await sharp(data, { raw: { width: 480, height: 360, channels: 4 } }).png().toBuffer();
  }
  // 2400x1800 (4.3 MP): its full-size AVIF is written as a grid of 5x4 tiles of 480x456 (the
  // last row cropped by the grid's own size).
  big = await sharp(kodim).resize(2400, 1800, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer();
  // libavif's translucent five-colour sequence with an alpha track (test/fixtures/SOURCES.md).
  // (Chromium refuses link-u's star-8bpc-with-alpha.avifs: "Failed to retrieve track metadata".)
  const seq = readFileSync(resolve(ROOT, "test/fixtures/colors-animated-8bpc-alpha-exif-xmp.avif"));
  for (const [key, body] of [["e2e/parrots.jpg", jpeg], ["e2e/parrots.png", kodim], ["e2e/pan.gif", gif], ["e2e/big.jpg", big], ["e2e/seq.avif", seq], ["e2e/disc.gif", discGif], ["e2e/sticker.png", sticker]]) {
    const res = await fetch(`${worker.base}/_api/objects/${key}`, { method: "PUT", body, headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 201, `push ${key}: ${await res.text()}`);
  }
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    // No sandbox as root in CI; no background traffic, since this machine has no internet.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});

/**
 * The <img id=`id`> as Chromium draws it on a canvas: its natural size and the RGBA of a
 * `cols` x `rows` lattice of points `step` apart from `offset` (clamped into the image).
 */
function drawnPixels(page, id, cols, rows, step, offset) {
  return page.evaluate(
    ({ id, cols, rows, step, offset }) => {
      const img = document.getElementById(id);
      const c = document.createElement("canvas");
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const points = [];
      for (let j = 0; j < rows; j++) for (let i = 0; i < cols; i++) {
        const x = Math.min(c.width - 1, i * step + offset);
        const y = Math.min(c.height - 1, j * step + offset);
        points.push([x, y, ...ctx.getImageData(x, y, 1, 1).data]);
      }
      return { size: [img.naturalWidth, img.naturalHeight], points };
    },
    { id, cols, rows, step, offset },
  );
}

after(async () => {
  await browser?.close();
  worker?.stop();
  if (persist) rmSync(persist, { recursive: true, force: true });
});

test("a plain <img> of a JPEG key arrives as AVIF because of Chromium's own Accept", async () => {
  const page = await browser.newPage();
  const seen = [];
  page.on("response", async (res) => {
    if (res.url().includes("/e2e/parrots.jpg")) seen.push({ accept: await res.request().headerValue("accept"), type: res.headers()["content-type"], vary: res.headers()["vary"] });
  });
  await page.goto(`${worker.base}/`);
  await page.setContent(`<img id="p" src="${worker.base}/e2e/parrots.jpg">`);
  await page.waitForFunction(() => document.getElementById("p").complete);
  const size = await page.evaluate(() => [document.getElementById("p").naturalWidth, document.getElementById("p").naturalHeight]);
  assert.deepEqual(size, [768, 512]);
  assert.equal(seen.length, 1);
  assert.match(seen[0].accept, /image\/avif/, "Chromium's Accept lists AVIF");
  assert.equal(seen[0].type, "image/avif");
  assert.equal(seen[0].vary, "Accept");
  await page.close();
});

test("the playground shows every profile with a decoded image and the right format", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${worker.base}/_demo?key=e2e/parrots.jpg&caplist=png`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 20_000 });
  const tiles = await page.$$eval(".tile", (els) =>
    els.map((t) => ({
      id: t.dataset.profile,
      done: t.dataset.done,
      format: t.querySelector('[data-field="format"]').textContent,
      dims: t.querySelector('[data-field="dimensions"]').textContent,
      natural: t.querySelector("img").naturalWidth,
    })),
  );
  const byId = Object.fromEntries(tiles.map((t) => [t.id, t]));
  for (const t of tiles) {
    assert.equal(t.done, "ok", `${t.id}: ${t.format}`);
    assert.ok(t.natural > 0, `${t.id} decoded`);
  }
  assert.equal(byId.chrome.format, "avif");
  assert.equal(byId.safari15.format, "webp");
  assert.equal(byId.okhttp.format, "webp");
  assert.equal(byId.jpg.format, "jpeg");
  assert.equal(byId.custom.format, "png");
  assert.equal(byId.sized.format, "avif");
  assert.equal(byId.sized.dims, "400 × 400");
  assert.equal(byId.browser.dims, "768 × 512");
  await page.screenshot({ path: join(ARTIFACTS, "playground.png"), fullPage: true });
  await page.close();
});

test("a plain <img> of an animated GIF arrives as an animated AVIF that Chromium plays frame by frame; as WebP (ANIM) for a WebP-only caplist", async () => {
  const page = await browser.newPage();
  const seen = [];
  page.on("response", async (res) => {
    if (res.url().includes("/e2e/pan.gif")) seen.push({ type: res.headers()["content-type"], body: await res.body() });
  });
  await page.goto(`${worker.base}/`);
  await page.setContent(`<img id="a" src="${worker.base}/e2e/pan.gif">`);
  await page.waitForFunction(() => document.getElementById("a").complete);
  const size = await page.evaluate(() => [document.getElementById("a").naturalWidth, document.getElementById("a").naturalHeight]);
  assert.deepEqual(size, [160, 120]);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].type, "image/avif");
  // Every frame through Chromium's own AVIF decoder (WebCodecs ImageDecoder), against the
  // GIF's frames as libvips composites them.
  const original = Buffer.from(await (await fetch(`${worker.base}/e2e/pan.gif?caplist=gif`)).arrayBuffer());
  const gif = await sharp(original, { animated: true }).ensureAlpha().raw().toBuffer();
  const played = await page.evaluate(
    async ({ avif, gif }) => {
      const data = Uint8Array.from(atob(avif), (c) => c.charCodeAt(0));
      const ref = Uint8Array.from(atob(gif), (c) => c.charCodeAt(0));
      const dec = new ImageDecoder({ data, type: "image/avif" });
      await dec.tracks.ready;
      await dec.completed;
      const track = dec.tracks.selectedTrack;
      const canvas = new OffscreenCanvas(160, 120);
      const ctx = canvas.getContext("2d");
      const frames = [];
      const count = ref.length / (160 * 120 * 4);
      for (let i = 0; i < track.frameCount; i++) {
        const { image } = await dec.decode({ frameIndex: i });
        ctx.drawImage(image, 0, 0);
        const px = ctx.getImageData(0, 0, 160, 120).data;
        // Mean difference against every GIF frame: frame i must be closest to GIF frame i.
        const diffs = [];
        for (let j = 0; j < count; j++) {
          let sum = 0;
          for (let k = 0; k < px.length; k += 4) for (let c = 0; c < 3; c++) sum += Math.abs(px[k + c] - ref[j * px.length + k + c]);
          diffs.push(sum / (px.length * 0.75));
        }
        frames.push({ width: image.displayWidth, durationMs: image.duration / 1000, diffs });
        image.close();
      }
      return { animated: track.animated, frameCount: track.frameCount, repetitionCount: track.repetitionCount, frames };
    },
    { avif: seen[0].body.toString("base64"), gif: gif.toString("base64") },
  );
  assert.equal(played.animated, true);
  assert.equal(played.frameCount, 6);
  // The GIF loops forever (NETSCAPE2.0 count 0).
  assert.equal(played.repetitionCount, Infinity);
  assert.deepEqual(played.frames.map((f) => f.durationMs), [80, 80, 80, 80, 80, 80]);
  // Each frame is the GIF's frame at its place. (Chromium's VideoFrame drawing shifts colours
  // by a few levels, so the bound is loose here; libavif/dav1d's decode of the same coding is
  // within 1.5 of the GIF in test/animation.test.ts.)
  for (const [i, f] of played.frames.entries()) {
    assert.equal(f.diffs.indexOf(Math.min(...f.diffs)), i, `frame ${i} is closest to GIF frame ${i}: ${f.diffs.map((d) => d.toFixed(1))}`);
    assert.ok(f.diffs[i] < 10, `frame ${i}: mean difference ${f.diffs[i].toFixed(2)}`);
  }
  // A client decoding animated WebP but not AVIF gets the WebP (ANIM chunk, six frames), and
  // Chromium shows that too.
  const webpSeen = [];
  page.on("response", async (res) => {
    if (res.url().includes("/e2e/pan.gif?caplist=webp")) webpSeen.push({ type: res.headers()["content-type"], body: await res.body() });
  });
  await page.setContent(`<img id="w" src="${worker.base}/e2e/pan.gif?caplist=webp">`);
  await page.waitForFunction(() => document.getElementById("w").complete);
  assert.deepEqual(await page.evaluate(() => [document.getElementById("w").naturalWidth, document.getElementById("w").naturalHeight]), [160, 120]);
  assert.equal(webpSeen.length, 1);
  assert.equal(webpSeen[0].type, "image/webp");
  assert.ok(webpSeen[0].body.includes(Buffer.from("ANIM")), "the WebP carries an ANIM chunk");
  assert.equal((await sharp(webpSeen[0].body, { animated: true }).metadata()).pages, 6);
  await page.close();
});

test("a transparent GIF arrives as an animated AVIF with an alpha track that Chromium plays: transparent outside the disc, the GIF's colours inside", async () => {
  const page = await browser.newPage();
  const seen = [];
  page.on("response", async (res) => {
    if (res.url().includes("/e2e/disc.gif")) seen.push({ type: res.headers()["content-type"], tried: res.headers()["x-image-tried"], body: await res.body() });
  });
  await page.goto(`${worker.base}/`);
  await page.setContent(`<img id="d" src="${worker.base}/e2e/disc.gif">`);
  await page.waitForFunction(() => document.getElementById("d").complete);
  assert.deepEqual(await page.evaluate(() => [document.getElementById("d").naturalWidth, document.getElementById("d").naturalHeight]), [240, 180]);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].type, "image/avif");
  assert.equal(seen[0].tried, "avif=transcode");
  const original = Buffer.from(await (await fetch(`${worker.base}/e2e/disc.gif?caplist=gif`)).arrayBuffer());
  const gif = await sharp(original, { animated: true }).ensureAlpha().raw().toBuffer();
  const played = await page.evaluate(
    async ({ avif, gif }) => {
      const ref = Uint8Array.from(atob(gif), (c) => c.charCodeAt(0));
      const dec = new ImageDecoder({ data: Uint8Array.from(atob(avif), (c) => c.charCodeAt(0)), type: "image/avif" });
      await dec.tracks.ready;
      await dec.completed;
      const track = dec.tracks.selectedTrack;
      const canvas = new OffscreenCanvas(240, 180);
      const ctx = canvas.getContext("2d");
      const frames = [];
      for (let i = 0; i < track.frameCount; i++) {
        const { image } = await dec.decode({ frameIndex: i });
        ctx.clearRect(0, 0, 240, 180);
        ctx.drawImage(image, 0, 0);
        const px = ctx.getImageData(0, 0, 240, 180).data;
        const at = i * px.length;
        // Colour where the GIF frame is opaque (and not at the disc's edge, where lossy alpha
        // blends); alpha at a corner and at the centre.
        let sum = 0;
        let n = 0;
        for (let k = 0; k < px.length; k += 4) {
          const x = (k / 4) % 240;
          const y = Math.floor(k / 4 / 240);
          if (ref[at + k + 3] === 255 && Math.hypot(x - 120, y - 90) < 78) for (let c = 0; c < 3; c++, n++) sum += Math.abs(px[k + c] - ref[at + k + c]);
        }
        frames.push({ durationMs: image.duration / 1000, diff: sum / n, corner: px[3], centre: px[(90 * 240 + 120) * 4 + 3] });
        image.close();
      }
      return { frameCount: track.frameCount, repetitionCount: track.repetitionCount, frames };
    },
    { avif: seen[0].body.toString("base64"), gif: gif.toString("base64") },
  );
  assert.equal(played.frameCount, 6);
  assert.equal(played.repetitionCount, Infinity);
  assert.deepEqual(played.frames.map((f) => f.durationMs), [80, 80, 80, 80, 80, 80]);
  for (const [i, f] of played.frames.entries()) {
    // Chromium's alpha comes from the auxiliary track: without it every pixel would be opaque.
    assert.equal(f.corner, 0, `frame ${i}: corner alpha ${f.corner}`);
    assert.ok(f.centre > 247, `frame ${i}: centre alpha ${f.centre}`);
    // As loose as the opaque pan's bound above (Chromium's VideoFrame drawing shifts colours).
    assert.ok(f.diff < 10, `frame ${i}: mean difference ${f.diff.toFixed(2)} from the GIF`);
  }
  await page.close();
});

test("an animated AVIF with an alpha track reaches a WebP-only client as an animated WebP that Chromium plays like the original", async () => {
  const page = await browser.newPage();
  await page.goto(`${worker.base}/`);
  const original = Buffer.from(await (await fetch(`${worker.base}/e2e/seq.avif?caplist=avif`)).arrayBuffer());
  const res = await fetch(`${worker.base}/e2e/seq.avif?caplist=webp`);
  assert.equal(res.headers.get("content-type"), "image/webp");
  assert.equal(res.headers.get("x-image-tried"), "webp=transcode");
  const webp = Buffer.from(await res.arrayBuffer());
  // Both files through Chromium's own decoders (libavif/dav1d and libwebp), frame by frame.
  const played = await page.evaluate(
    async ({ avif, webp }) => {
      const play = async (b64, type) => {
        const dec = new ImageDecoder({ data: Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), type });
        await dec.tracks.ready;
        await dec.completed;
        const track = dec.tracks.selectedTrack;
        const canvas = new OffscreenCanvas(150, 150);
        const ctx = canvas.getContext("2d");
        const frames = [];
        for (let i = 0; i < track.frameCount; i++) {
          const { image } = await dec.decode({ frameIndex: i });
          ctx.clearRect(0, 0, 150, 150);
          ctx.drawImage(image, 0, 0);
          frames.push({ durationMs: image.duration / 1000, px: Array.from(ctx.getImageData(0, 0, 150, 150).data) });
          image.close();
        }
        return { frameCount: track.frameCount, repetitionCount: track.repetitionCount, frames };
      };
      const a = await play(avif, "image/avif");
      const w = await play(webp, "image/webp");
      const diffs = a.frames.map((f, i) => {
        let sum = 0;
        for (let k = 0; k < f.px.length; k++) sum += Math.abs(f.px[k] - w.frames[i].px[k]);
        return sum / f.px.length;
      });
      const alphaOf = (f, x, y) => f.px[(y * 150 + x) * 4 + 3];
      return {
        counts: [a.frameCount, w.frameCount],
        loops: [a.repetitionCount, w.repetitionCount],
        durations: [a.frames.map((f) => f.durationMs), w.frames.map((f) => f.durationMs)],
        diffs,
        alpha: [alphaOf(a.frames[2], 75, 75), alphaOf(w.frames[2], 75, 75)],
      };
    },
    { avif: original.toString("base64"), webp: webp.toString("base64") },
  );
  assert.deepEqual(played.counts, [5, 5]);
  assert.deepEqual(played.loops, [Infinity, Infinity]);
  // WebP counts whole milliseconds: each delay within 1 ms of the AVIF's 5/30 s, the same total.
  for (const [i, d] of played.durations[1].entries()) assert.ok(Math.abs(d - played.durations[0][i]) < 1, `frame ${i}: ${d} vs ${played.durations[0][i]} ms`);
  assert.ok(Math.abs(played.durations[1].reduce((a, b) => a + b) - played.durations[0].reduce((a, b) => a + b)) < 1);
  for (const [i, d] of played.diffs.entries()) assert.ok(d < 4, `frame ${i}: mean difference ${d.toFixed(2)} from Chromium's AVIF decode`);
  // The alpha track survived: translucent (128) in both.
  for (const a of played.alpha) assert.ok(Math.abs(a - 128) <= 3, `alpha ${played.alpha}`);
  await page.close();
});

test("a transparent PNG arrives as an AVIF still with an alpha image that Chromium draws: transparent outside the disc, the source's colours inside", async () => {
  const page = await browser.newPage();
  await page.goto(`${worker.base}/`);
  const answered = page.waitForResponse((res) => res.url().includes("/e2e/sticker.png"));
  await page.setContent(`<img id="s" src="${worker.base}/e2e/sticker.png?caplist=avif,png">`);
  const res = await answered;
  await page.waitForFunction(() => document.getElementById("s").complete);
  assert.equal(res.headers()["content-type"], "image/avif", res.headers()["x-image-tried"]);
  const avif = await res.body();
  // Our file: one AV1 image and its alpha image (auxC with the alpha URN), no grid, no track.
  assert.ok(avif.includes(Buffer.from("auxC")) && avif.includes(Buffer.from("urn:mpeg:mpegB:cicp:systems:auxiliary:alpha")), "alpha image");
  assert.ok(!avif.includes(Buffer.from("grid")) && !avif.includes(Buffer.from("moov")), "a single still");
  const drawn = await drawnPixels(page, "s", 12, 9, 40, 20);
  assert.deepEqual(drawn.size, [480, 360]);
  const { data } = await sharp(sticker).raw().toBuffer({ resolveWithObject: true });
  let inside = 0;
  let outside = 0;
  for (const [x, y, r, g, b, a] of drawn.points) {
    const d = Math.hypot(x - 240, y - 180);
    const o = (y * 480 + x) * 4;
    if (d > 168) {
      assert.ok(a <= 8, `(${x},${y}) outside the disc: alpha ${a}`);
      outside++;
    } else if (d < 152) {
      assert.ok(a >= 247, `(${x},${y}) inside the disc: alpha ${a}`);
      const worst = Math.max(Math.abs(r - data[o]), Math.abs(g - data[o + 1]), Math.abs(b - data[o + 2]));
      assert.ok(worst <= 40, `(${x},${y}) inside the disc: channel difference ${worst}`);
      inside++;
    }
  }
  assert.ok(inside > 30 && outside > 20, `${inside} points inside, ${outside} outside`);
  await page.close();
});

test("a full-size AVIF grid (5x4 tiles of 480x456) is shown by Chromium with the source's pixels", async () => {
  // Asked as AVIF alone, the grid (over the request's CPU budget, with no other candidate to
  // serve meanwhile) is produced in the request, within the platform's CPU limit.
  const url = `${worker.base}/e2e/big.jpg?caplist=avif`;
  const page = await browser.newPage();
  await page.goto(`${worker.base}/`);
  const answered = page.waitForResponse((res) => res.url().includes("/e2e/big.jpg"), { timeout: 120_000 });
  await page.setContent(`<img id="g" src="${url}">`);
  const res = await answered;
  await page.waitForFunction(() => document.getElementById("g").complete, null, { timeout: 120_000 });
  assert.equal(res.headers()["content-type"], "image/avif", res.headers()["x-image-tried"]);
  const avif = await res.body();
  // It is a real grid: the primary item is of type 'grid' and 20 av01 tiles follow.
  assert.ok(avif.includes(Buffer.from("grid")), "primary item is a grid");
  assert.equal(avif.toString("latin1").split("av01").length - 1, 20, "20 av01 tile items");
  // libheif (through sharp) assembles it too.
  const viaSharp = await sharp(avif).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([viaSharp.info.width, viaSharp.info.height], [2400, 1800]);
  // Chromium draws it; sample a 24x18 grid of points (every tile, edges and seams included).
  const drawn = await drawnPixels(page, "g", 24, 18, 100, 50);
  assert.deepEqual(drawn.size, [2400, 1800]);
  const { data, info } = await sharp(big).raw().toBuffer({ resolveWithObject: true });
  let worst = 0;
  for (const [x, y, r, g, b] of drawn.points) {
    const o = (y * info.width + x) * info.channels;
    worst = Math.max(worst, Math.abs(r - data[o]), Math.abs(g - data[o + 1]), Math.abs(b - data[o + 2]));
  }
  // AVIF at the default quality against the JPEG it came from: small smooth-area differences.
  assert.ok(worst <= 40, `largest channel difference ${worst}`);
  await page.screenshot({ path: join(ARTIFACTS, "avif-grid.png") });
  await page.close();
});
