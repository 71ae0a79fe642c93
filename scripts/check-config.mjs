#!/usr/bin/env node
// `npm run check:config [-- --env production] [-- --remote] [-- --config FILE]`: validates the worker's config the
// way the worker itself will (the real `loadConfig` of src/config.ts), before a deploy, so a bad
// or missing value is an error here and not a 500 on every URL of the deployment.
//   vars:    wrangler.toml's [vars], or [env.<name>.vars] with --env (wrangler does not inherit them)
//   secrets: API_TOKENS and URL_SIGNING_KEYS from this process's environment when set; else, with
//            --remote, `wrangler secret list` says which are set on Cloudflare (values stay
//            secret: a set one counts as valid); else, without --env, from .dev.vars.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const SECRETS = ["API_TOKENS", "URL_SIGNING_KEYS"];
const args = process.argv.slice(2);
const envName = args.includes("--env") ? args[args.indexOf("--env") + 1] : undefined;
const remote = args.includes("--remote");
// As wrangler's own --config: another wrangler.toml (the tests check altered copies).
const tomlFile = args.includes("--config") ? resolve(args[args.indexOf("--config") + 1]) : join(ROOT, "wrangler.toml");

/** The string pairs of one `[table]` of wrangler.toml (our file keeps vars as `KEY = "value"`). */
function tomlTable(text, table) {
  const out = {};
  let inside = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("[")) {
      inside = line === `[${table}]`;
      continue;
    }
    if (!inside || !line || line.startsWith("#")) continue;
    const m = /^([A-Z0-9_]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(line);
    if (!m) throw new Error(`wrangler.toml [${table}]: cannot read "${line}" (expected KEY = "string")`);
    out[m[1]] = JSON.parse(`"${m[2]}"`);
  }
  return out;
}

function devVars() {
  const file = join(ROOT, ".dev.vars");
  if (!existsSync(file)) return {};
  return Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .map((l) => /^([A-Z0-9_]+)\s*=\s*"?(.*?)"?\s*$/.exec(l.trim()))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
}

function remoteSecretNames() {
  const wrangler = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
  const out = execFileSync(process.execPath, [wrangler, "secret", "list", "--format", "json", ...(envName ? ["--env", envName] : [])], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return new Set(JSON.parse(out).map((s) => s.name));
}

const toml = readFileSync(tomlFile, "utf8");
const vars = tomlTable(toml, envName ? `env.${envName}.vars` : "vars");
if (envName && !toml.includes(`[env.${envName}]`)) {
  console.error(`wrangler.toml has no [env.${envName}]`);
  process.exit(1);
}
const secrets = {};
const told = [];
const names = remote ? remoteSecretNames() : null;
const local = envName ? {} : devVars();
for (const name of SECRETS) {
  if (process.env[name]) {
    secrets[name] = process.env[name];
    told.push(`${name} from the environment`);
  } else if (names?.has(name)) {
    // Its value is not readable: a placeholder that passes the length checks stands for it.
    secrets[name] = "x".repeat(64);
    told.push(`${name} set on Cloudflare`);
  } else if (local[name]) {
    secrets[name] = local[name];
    told.push(`${name} from .dev.vars`);
  } else {
    told.push(`${name} not set`);
  }
}

// config.ts imports only leaves (errors, formats/id, the quality ladder): no codec, no WASM, so
// it bundles as it is and this check can run on a fresh clone (test/node/check-config.test.mjs).
const bundled = await build({
  entryPoints: [join(ROOT, "src/config.ts")],
  bundle: true,
  format: "esm",
  platform: "neutral",
  write: false,
  logLevel: "error",
});
const { loadConfig } = await import(`data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString("base64")}`);
const where = envName ? `[env.${envName}]` : "the top level (wrangler dev)";
try {
  const config = loadConfig({ ...vars, ...secrets });
  // The worker produces a last candidate in the request when predicted under CPU_LIMIT_MS: that
  // is only safe when the platform really grants it.
  const limits = /^\s*cpu_ms\s*=\s*(\d+)/m.exec(toml.split(`[${envName ? `env.${envName}.` : ""}limits]`)[1] ?? "");
  if (!limits) throw new Error(`wrangler.toml has no [${envName ? `env.${envName}.` : ""}limits] cpu_ms (the Workers Paid plan's CPU limit)`);
  if (Number(limits[1]) < config.cpuLimitMs) throw new Error(`CPU_LIMIT_MS ${config.cpuLimitMs} exceeds limits.cpu_ms ${limits[1]}`);
  console.log(`config of ${where} is valid (${told.join(", ")}): size policy ${config.sizePolicy}, formats ${config.priority.join(",")}.`);
  if (config.apiTokens.length === 0) console.log("  note: no API_TOKENS, so the push API answers 401 to everyone: wrangler secret put API_TOKENS" + (envName ? ` --env ${envName}` : ""));
} catch (e) {
  console.error(`config of ${where} is invalid: ${e.message}`);
  if (/URL_SIGNING_KEYS|API_TOKENS/.test(e.message)) {
    console.error(`  make a key:  npm run --silent new-key`);
    console.error(`  set it:      wrangler secret put ${/URL_SIGNING_KEYS/.test(e.message) ? "URL_SIGNING_KEYS" : "API_TOKENS"}${envName ? ` --env ${envName}` : ""}   (then check with --remote)`);
  }
  process.exit(1);
}
