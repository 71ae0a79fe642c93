// The deploy pre-flight, as `npm run deploy` runs it first: `check:config --env production`
// validates wrangler.toml's [env.production] with the secrets from the environment, on a clone
// with nothing beside it. It must pass when they are good and name the variable when one is not.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const key = () => randomBytes(32).toString("base64url");

function checkConfig(secrets, extra = []) {
  const env = { ...process.env };
  delete env.API_TOKENS;
  delete env.URL_SIGNING_KEYS;
  const r = spawnSync(process.execPath, [join(ROOT, "scripts/check-config.mjs"), "--env", "production", ...extra], { cwd: ROOT, env: { ...env, ...secrets }, encoding: "utf8" });
  return { status: r.status, out: r.stdout + r.stderr };
}

test("check:config --env production passes with good secrets in the environment", () => {
  const r = checkConfig({ API_TOKENS: key(), URL_SIGNING_KEYS: key() });
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /config of \[env\.production\] is valid/);
});

test("check:config --env production fails naming a bad secret", () => {
  const short = checkConfig({ API_TOKENS: key(), URL_SIGNING_KEYS: "short" });
  assert.equal(short.status, 1, short.out);
  assert.match(short.out, /is invalid: .*URL_SIGNING_KEYS/);
});

test("a first deployment needs no signing key: production serves an allowlist of sizes", () => {
  const r = checkConfig({ API_TOKENS: key() });
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /config of \[env\.production\] is valid/);
});

test("check:config fails naming a wrong variable of wrangler.toml, and bundles no codec to say so", () => {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const section = toml.indexOf("[env.production.vars]");
  assert.ok(section > 0, "wrangler.toml has [env.production.vars]");
  const altered = toml.slice(0, section) + toml.slice(section).replace("[env.production.vars]", '[env.production.vars]\nQUALITY_LEVEL = "83"');
  const file = join(mkdtempSync(join(tmpdir(), "check-config-")), "wrangler.toml");
  writeFileSync(file, altered);
  const r = checkConfig({ API_TOKENS: key() }, ["--config", file]);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /is invalid: QUALITY_LEVEL: expected one of/);
  assert.doesNotMatch(r.out, /No loader|Could not resolve/);
});
