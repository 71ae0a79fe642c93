// The deploy pre-flight, as `npm run deploy` runs it first: `check:config --env production`
// validates wrangler.toml's [env.production] with the secrets from the environment, on a clone
// with nothing beside it. It must pass when they are good and name the variable when one is not.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const key = () => randomBytes(32).toString("base64url");

function checkConfig(secrets) {
  const env = { ...process.env };
  delete env.API_TOKENS;
  delete env.URL_SIGNING_KEYS;
  const r = spawnSync(process.execPath, [join(ROOT, "scripts/check-config.mjs"), "--env", "production"], { cwd: ROOT, env: { ...env, ...secrets }, encoding: "utf8" });
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
