#!/usr/bin/env node
// `npm test` runs this first: the docs a user reads must not lie about the repo.
// - Every relative link of README.md and docs/*.md points to a file the repo tracks (not a
//   git-ignored one a clone would not have) and, with a #fragment, to a heading of it.
// - docs/configuration.md lists every variable of DEFAULT_VARS (src/config.ts) with its default
//   as written there, and no variable that does not exist.
// Exits 1 naming each problem.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const docs = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const problems = [];

let tracked = null;
try {
  tracked = new Set(execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean));
} catch {
  // Not a git checkout (a tarball): existence is all that can be checked.
}
const isTracked = (path) => (tracked ? tracked.has(path) || [...tracked].some((t) => t.startsWith(`${path}/`)) : existsSync(join(ROOT, path)));

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
const anchorsOf = (text) => new Set([...text.matchAll(/^#{1,6}\s+(.*)$/gm)].map((m) => anchor(m[1].replace(/`/g, ""))));

for (const doc of docs) {
  const text = readFileSync(join(ROOT, doc), "utf8").replace(/```[\s\S]*?```/g, "");
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^(https?:|mailto:)/.test(target)) continue;
    const [path, fragment] = target.split("#");
    const file = path ? relative(ROOT, resolve(dirname(join(ROOT, doc)), path)) : doc;
    if (path && !isTracked(file)) {
      problems.push(`${doc}: link to ${target}: ${existsSync(join(ROOT, file)) ? "not tracked by git (a clone does not have it)" : "no such file"}`);
      continue;
    }
    if (fragment && file.endsWith(".md") && !anchorsOf(readFileSync(join(ROOT, file), "utf8")).has(fragment)) problems.push(`${doc}: link to ${target}: no heading #${fragment} in ${file}`);
  }
}

// DEFAULT_VARS as written: `NAME: "value"` or `NAME: String(<arithmetic>)`.
const config = readFileSync(join(ROOT, "src/config.ts"), "utf8");
const block = /export const DEFAULT_VARS = \{([\s\S]*?)\} as const;/.exec(config);
if (!block) problems.push("src/config.ts: DEFAULT_VARS not found");
const defaults = new Map();
for (const [, name, literal, expr] of (block?.[1] ?? "").matchAll(/^\s*([A-Z0-9_]+):\s*(?:"([^"]*)"|String\(([\d\s*+]+)\)),?\s*$/gm)) {
  defaults.set(name, literal ?? String(expr.split("*").reduce((a, b) => a * Number(b), 1)));
}
const table = new Map();
for (const [, name, value] of readFileSync(join(ROOT, "docs/configuration.md"), "utf8").matchAll(/^\| `([A-Z0-9_]+)`(?: \(secret\))? \| ([^|]*) \|/gm)) table.set(name, value.trim());
for (const [name, value] of defaults) {
  if (!table.has(name)) problems.push(`docs/configuration.md: no row for ${name} (default "${value}")`);
  else if (value === "" ? !/^none|^from the ladder/.test(table.get(name)) : !table.get(name).startsWith(`\`${value}\``)) problems.push(`docs/configuration.md: ${name}'s default is "${value}" in DEFAULT_VARS but the table says ${table.get(name)}`);
}
for (const name of table.keys()) if (!defaults.has(name)) problems.push(`docs/configuration.md: ${name} is not a variable of DEFAULT_VARS`);

if (problems.length) {
  for (const p of problems) console.error(`check-docs: ${p}`);
  process.exit(1);
}
console.log(`check-docs: ${docs.length} documents, links resolve; ${defaults.size} defaults match docs/configuration.md`);
