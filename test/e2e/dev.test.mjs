// What a new user does first, checked for real: `npm run dev`'s seeding and every URL it prints,
// then every curl line of the README's shell blocks, run as written (port aside) in a folder
// that holds the `photo.jpg` they upload, against `wrangler dev` on loopback.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import sharp from "sharp";
import { SAMPLE_URLS, seedSamples } from "../../scripts/seed-dev.mjs";
import { startWrangler } from "../../scripts/lib/wrangler.mjs";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const PORT = 8796;
// The token .dev.vars.example gives a fresh clone, which the README's examples use.
const DEV_TOKEN = /API_TOKENS=(\S+)/.exec(readFileSync(join(ROOT, ".dev.vars.example"), "utf8"))[1];

let worker;
let state;

before(async () => {
  state = mkdtempSync(join(tmpdir(), "dev-state-"));
  seedSamples({ persistTo: state, quiet: true });
  worker = await startWrangler({ port: PORT, vars: { API_TOKENS: DEV_TOKEN }, persistTo: state });
});

after(() => {
  worker?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

test("every URL npm run dev prints answers 200 with an image that decodes", async () => {
  for (const [path] of SAMPLE_URLS) {
    const res = await fetch(`${worker.base}${path}`, { headers: { Accept: "image/avif,image/webp,*/*" } });
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, `${path}: ${res.headers.get("X-Image-Tried")} ${res.status === 200 ? "" : body.toString()}`);
    assert.match(res.headers.get("Content-Type"), /^image\//, path);
    if (res.headers.get("Content-Type") === "image/heic") continue; // sharp's prebuilt libvips has no HEVC decoder
    const meta = await sharp(body).metadata();
    assert.ok(meta.width > 0 && meta.height > 0, `${path} decodes`);
  }
  const demo = await fetch(`${worker.base}/_demo?key=samples/parrots.png`);
  assert.equal(demo.status, 200);
  assert.ok(!(await demo.text()).includes('id="missing"'), "the playground opens on a key that exists");
});

test("every curl example of the README works as written", async () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const commands = [];
  for (const [, block] of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    // One shell command per entry: backslash continuations joined, and a quoted argument that
    // spans lines (the jobs example's JSON) kept whole.
    let command = "";
    for (const line of block.replace(/\\\n\s*/g, "").split("\n")) {
      command = command ? `${command}\n${line}` : line.trim();
      if ((command.match(/'/g) ?? []).length % 2 === 1) continue;
      if (/^curl .*127\.0\.0\.1:8787/s.test(command)) commands.push(command);
      command = "";
    }
  }
  assert.ok(commands.length >= 4, `found ${commands.length} curl examples`);
  const cwd = mkdtempSync(join(tmpdir(), "readme-"));
  copyFileSync(join(ROOT, "samples/street.jpg"), join(cwd, "photo.jpg"));
  try {
    for (const command of commands) {
      const run = command.replaceAll("127.0.0.1:8787", `127.0.0.1:${PORT}`).replace(/^curl /, `curl -sS -w '\\n%{http_code} %{content_type}' `);
      const out = execFileSync("bash", ["-c", run], { cwd, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
      const [status, type] = out.trim().split("\n").at(-1).split(" ");
      assert.match(status, /^2\d\d$/, `${command} -> ${out}`);
      if (/\/_api\//.test(command)) assert.match(type ?? "", /json/, command);
      else assert.match(type ?? "", /^image\//, command);
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
