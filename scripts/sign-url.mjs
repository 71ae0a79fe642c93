#!/usr/bin/env node
// Signs a delivery URL for SIZE_POLICY=signed: prints the URL with ?sig= appended.
//   node scripts/sign-url.mjs <key> <url-or-path>
//   URL_SIGNING_KEYS=... node scripts/sign-url.mjs <url-or-path>   (signs with the first key,
//     the one to sign with while an older one is still accepted during rotation)
// The signature is HMAC-SHA256 over the percent-decoded path (leading slash, no query), in
// unpadded base64url: the same as `signPath` in src/variants/sign.ts, which TypeScript origins
// can import instead.
import { createHmac } from "node:crypto";

const argv = process.argv.slice(2);
const [key, target] = argv.length === 1 ? [(process.env.URL_SIGNING_KEYS ?? "").split(",")[0].trim(), argv[0]] : argv;
if (!key || !target) {
  console.error("usage: node scripts/sign-url.mjs <signing-key> <url-or-path>\n   or: URL_SIGNING_KEYS=<keys> node scripts/sign-url.mjs <url-or-path>");
  process.exit(2);
}
const url = new URL(target, "http://placeholder.invalid");
// A signature covers the variant's options as its canonical path names them (docs/api.md
// "Options"): `/a1.jpg?w=300&h=300&fit=pad` is signed as `/a1_300_300-pad.jpg`. Sign that path
// (and use it as the URL, or keep the query: the worker folds it to the same name).
const options = [...url.searchParams.keys()].filter((k) => !["caplist", "v", "sig"].includes(k));
if (options.length) {
  console.error(`sign the variant's canonical path instead of query options (${options.join(", ")}): e.g. /covers/a1_300_300-pad-q60.jpg; see docs/api.md "Options"`);
  process.exit(2);
}
const path = decodeURIComponent(url.pathname);
const sig = createHmac("sha256", key).update(path).digest("base64url");
url.searchParams.set("sig", sig);
const out = target.startsWith("/") ? `${url.pathname}${url.search}` : url.toString();
console.log(out);
