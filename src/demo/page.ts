/**
 * @module demo/page
 * The playground at `/_demo`: one image requested under several client profiles side by side.
 * A page cannot set an <img>'s Accept header, so each profile is a `fetch` with that profile's
 * headers (same origin: every response header is readable), shown through an object URL. One
 * plain <img> uses the browser's own Accept, which is what a real page gets.
 */

/** Client profiles: label, query, and the Accept header sent (null: none, as okhttp sends). */
export const PROFILES: { id: string; label: string; query: string; suffix: string; accept: string | null }[] = [
  { id: "chrome", label: "Chrome (Accept)", query: "", suffix: "", accept: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8" },
  { id: "safari15", label: "Safari 15 (Accept)", query: "", suffix: "", accept: "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5" },
  { id: "okhttp", label: "okhttp, caplist=webp,jpg", query: "caplist=webp,jpg", suffix: "", accept: null },
  { id: "jpg", label: "caplist=jpg", query: "caplist=jpg", suffix: "", accept: null },
  { id: "sized", label: "Chrome, size _400_400", query: "", suffix: "_400_400", accept: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8" },
];

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** JSON safe inside <script>: `</script>` or `<!--` in a value must not end or alter the element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");

export function demoPage(key: string, caplist: string, found: { exists: boolean; origin: string }): string {
  const profiles = scriptJson(PROFILES);
  const pushKey = /\.[A-Za-z0-9]+$/.test(key) ? key : `${key}.jpg`;
  const missing = found.exists
    ? ""
    : `<p class="error" id="missing">No image is stored under <code>${escape(key)}</code>. Push one with the API token of <code>.dev.vars</code>, then reload:<br>
<code>curl -X PUT --data-binary @photo.jpg -H 'Authorization: Bearer dev-token-0123456789abcdef' ${escape(found.origin)}/_api/objects/${escape(pushKey)}</code><br>
or try a seeded sample: <a href="/_demo?key=samples/parrots.png">samples/parrots.png</a>, <a href="/_demo?key=samples/pug.heic">samples/pug.heic</a>.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-image-cdn playground</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2937; background: #f9fafb; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  form { margin: 16px 0; display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
  input { font: inherit; padding: 6px 8px; border: 1px solid #cbd5e1; border-radius: 6px; }
  input[name=key] { width: 320px; }
  button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 0; background: #2563eb; color: white; cursor: pointer; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 16px; }
  .tile { background: white; border: 1px solid #e5e7eb; border-radius: 10px; padding: 12px; }
  .tile h2 { font-size: 14px; margin: 0 0 8px; }
  .tile img { width: 100%; height: 160px; object-fit: contain; background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0/16px 16px; border-radius: 6px; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; margin: 8px 0 0; font-size: 12px; }
  dt { color: #6b7280; } dd { margin: 0; word-break: break-all; }
  .format { font-weight: 700; color: #047857; }
  .error { color: #b91c1c; }
  code { background: #eef2ff; padding: 1px 4px; border-radius: 4px; }
</style>
</head>
<body>
<h1>edge-image-cdn playground</h1>
<p>One image, requested the way different clients ask for it. Each tile shows what the worker served.</p>
<form method="get" action="/_demo">
  <label>key <input name="key" value="${escape(key)}" placeholder="samples/parrots.png"></label>
  <label>caplist <input name="caplist" value="${escape(caplist)}" placeholder="avif,webp,jpg"></label>
  <button type="submit">Show</button>
</form>
${missing}
<div class="grid" id="grid">
  <div class="tile" id="tile-browser" data-profile="browser">
    <h2>This browser (plain &lt;img&gt;)</h2>
    <img id="browser-img" alt="as this browser gets it">
    <dl><dt>format</dt><dd class="format" data-field="format">…</dd><dt>dimensions</dt><dd data-field="dimensions">…</dd><dt>bytes</dt><dd data-field="bytes">…</dd><dt>source</dt><dd data-field="source">…</dd><dt>timing</dt><dd data-field="timing">…</dd></dl>
  </div>
</div>
<script>
const KEY = ${scriptJson(key)};
const CAPLIST = ${scriptJson(caplist)};
const PROFILES = ${profiles};
const grid = document.getElementById("grid");
const withSuffix = (key, suffix) => suffix ? key.replace(/(\\.[A-Za-z0-9]+)$/, suffix + "$1") : key;
// "cache;dur=1.0;desc=\"1 op\", r2;dur=2.0;desc=\"2 ops\"" -> "cache 1.0 ms · r2 2.0 ms (2 ops)"
const fmtTiming = (h) => (h || "").split(/,\\s*/).filter(Boolean).map((e) => {
  const name = e.split(";")[0], dur = /dur=([\\d.]+)/.exec(e), ops = /desc="(\\d+) ops"/.exec(e);
  return name + (dur ? " " + dur[1] + " ms" : "") + (ops ? " (" + ops[1] + " ops)" : "");
}).join(" · ");
const set = (tile, field, value, cls) => { const el = tile.querySelector('[data-field="' + field + '"]'); el.textContent = value; if (cls) el.className = cls; };
const profiles = CAPLIST ? [...PROFILES, { id: "custom", label: "caplist=" + CAPLIST, query: "caplist=" + encodeURIComponent(CAPLIST), suffix: "", accept: null }] : PROFILES;

function tileFor(p) {
  const t = document.createElement("div");
  t.className = "tile"; t.id = "tile-" + p.id; t.dataset.profile = p.id;
  t.innerHTML = '<h2></h2><img alt=""><dl><dt>format</dt><dd class="format" data-field="format">…</dd><dt>dimensions</dt><dd data-field="dimensions">…</dd><dt>bytes</dt><dd data-field="bytes">…</dd><dt>source</dt><dd data-field="source">…</dd><dt>tried</dt><dd data-field="tried">…</dd><dt>timing</dt><dd data-field="timing">…</dd></dl>';
  t.querySelector("h2").textContent = p.label;
  grid.appendChild(t);
  return t;
}

async function show(p) {
  const tile = tileFor(p);
  const url = "/" + withSuffix(KEY, p.suffix) + (p.query ? "?" + p.query : "");
  const headers = p.accept ? { Accept: p.accept } : {};
  try {
    // fetch sends "Accept: */*" when none is given; with a caplist that Accept is ignored.
    const res = await fetch(url, { headers, cache: "no-store" });
    set(tile, "source", res.headers.get("X-Image-Source") || res.status + " " + res.statusText);
    set(tile, "tried", res.headers.get("X-Image-Tried") || "");
    set(tile, "timing", fmtTiming(res.headers.get("Server-Timing")));
    if (!res.ok) { set(tile, "format", "HTTP " + res.status, "error"); tile.dataset.done = "error"; return; }
    const blob = await res.blob();
    set(tile, "format", (res.headers.get("Content-Type") || "").replace("image/", ""));
    set(tile, "bytes", blob.size.toLocaleString("en") + " B");
    const img = tile.querySelector("img");
    img.alt = p.label;
    await new Promise((ok, fail) => { img.onload = ok; img.onerror = () => fail(new Error("the browser could not decode it")); img.src = URL.createObjectURL(blob); });
    set(tile, "dimensions", img.naturalWidth + " × " + img.naturalHeight);
    tile.dataset.done = "ok";
  } catch (e) {
    set(tile, "format", String(e.message || e), "error");
    tile.dataset.done = "error";
  }
}

async function showBrowser() {
  const tile = document.getElementById("tile-browser");
  const img = document.getElementById("browser-img");
  const url = "/" + KEY;
  try {
    await new Promise((ok, fail) => { img.onload = ok; img.onerror = () => fail(new Error("no image")); img.src = url; });
    set(tile, "dimensions", img.naturalWidth + " × " + img.naturalHeight);
    // Scripts cannot read an <img>'s response headers, but Resource Timing exposes its type,
    // size and (same origin) the Server-Timing entries.
    const entry = performance.getEntriesByName(img.src).pop();
    set(tile, "format", entry && entry.contentType ? entry.contentType.replace("image/", "") : "(not exposed by this browser)");
    set(tile, "bytes", entry && entry.encodedBodySize ? entry.encodedBodySize.toLocaleString("en") + " B" : "?");
    set(tile, "source", "your browser's own Accept");
    set(tile, "timing", entry && entry.serverTiming ? entry.serverTiming.map((t) => t.name + " " + t.duration.toFixed(1) + " ms").join(" · ") : "");
    tile.dataset.done = "ok";
  } catch (e) {
    set(tile, "format", String(e.message || e), "error");
    tile.dataset.done = "error";
  }
}

Promise.all([showBrowser(), ...profiles.map(show)]).then(() => { document.body.dataset.ready = "true"; });
</script>
</body>
</html>`;
}
