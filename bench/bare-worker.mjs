// The cache-hit baseline: a Worker that does nothing but return one object from the same
// Cache API the image worker uses. PUT stores the body; GET serves it.
const KEY = "https://bare.bench.invalid/object";

export default {
  async fetch(request) {
    if (request.method === "PUT") {
      const body = await request.arrayBuffer();
      await caches.default.put(
        KEY,
        new Response(body, { headers: { "Content-Type": request.headers.get("Content-Type") ?? "application/octet-stream", "Cache-Control": "public, max-age=3600" } }),
      );
      return new Response("stored");
    }
    return (await caches.default.match(KEY)) ?? new Response("miss", { status: 404 });
  },
};
