#!/usr/bin/env node
// `npm test` runs this first: the house rules of src/'s imports, which the compiler cannot see.
// - No import circle among src/ modules, type imports included (a circle makes every module in it
//   depend on all the others: a change to one re-checks, re-bundles and re-reads the lot).
// - The layers point one way: codecs/ import only codecs/, wasm/ and src/bitstream (they know
//   nothing of formats, HTTP, R2 or config); formats/ import no stage of the request; config.ts
//   reaches no codec and no WASM (`npm run check:config` bundles it alone before a deploy).
// Exits 1 naming each circle or forbidden import.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const SRC = join(ROOT, "src");
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith(".ts")) files.push(path);
  }
};
walk(SRC);

/** Every relative import and re-export of `file`, resolved to a file (type-only ones included). */
function importsOf(file) {
  const text = readFileSync(file, "utf8");
  const out = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"|^\s*import\s+"(\.[^"]+)"/gm)) {
    const base = resolve(dirname(file), m[1] ?? m[2]);
    const found = [base, `${base}.ts`, join(base, "index.ts")].find((p) => existsSync(p) && statSync(p).isFile());
    if (found) out.push(found);
  }
  return out;
}
const edges = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (f) => relative(ROOT, f);
const problems = [];

// Tarjan's strongly connected components: each component of more than one file is a circle.
let next = 0;
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
function visit(v) {
  index.set(v, next);
  low.set(v, next++);
  stack.push(v);
  onStack.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!edges.has(w)) continue;
    if (!index.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
  }
  if (low.get(v) !== index.get(v)) return;
  const component = [];
  let w;
  do {
    w = stack.pop();
    onStack.delete(w);
    component.push(w);
  } while (w !== v);
  if (component.length > 1 || (edges.get(v) ?? []).includes(v)) problems.push(`import circle of ${component.length} files: ${component.map(rel).sort().join(", ")}`);
}
for (const f of files) if (!index.has(f)) visit(f);

const under = (f, dir) => f.startsWith(join(SRC, dir) + "/");
const STAGES = ["negotiate", "deliver", "produce", "storage", "jobs", "api", "variants", "demo"];
for (const [from, tos] of edges) {
  for (const to of tos) {
    if (under(from, "codecs") && !(under(to, "codecs") || to.startsWith(join(ROOT, "wasm") + "/") || to === join(SRC, "bitstream.ts"))) {
      problems.push(`${rel(from)} imports ${rel(to)}: codecs know nothing of formats, HTTP, R2 or config`);
    }
    if (under(from, "formats") && (STAGES.some((s) => under(to, s)) || to === join(SRC, "config.ts"))) {
      problems.push(`${rel(from)} imports ${rel(to)}: a format module knows no stage of the request`);
    }
  }
}

// Everything config.ts reaches, transitively: none of it may be a codec, a format module or WASM.
const reached = new Set();
const pending = [join(SRC, "config.ts")];
while (pending.length) {
  const f = pending.pop();
  if (reached.has(f)) continue;
  reached.add(f);
  pending.push(...(edges.get(f) ?? []));
}
for (const f of reached) {
  if (under(f, "codecs") || f.startsWith(join(ROOT, "wasm") + "/") || (under(f, "formats") && f !== join(SRC, "formats/id.ts"))) {
    problems.push(`config.ts reaches ${rel(f)}: the config check must bundle without codecs (import formats/id instead)`);
  }
}

if (problems.length) {
  for (const p of problems) console.error(`check-imports: ${p}`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} modules, no circle, layers point one way`);
