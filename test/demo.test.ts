/** The playground page: served when DEMO_PAGE=on (dev), absent otherwise. */
import { describe, expect, it } from "vitest";
import { call, encodeTo, gradient, put, uniquePrefix } from "./helpers";

describe("/_demo", () => {
  it("serves the playground with every client profile when enabled", async () => {
    const { res, body } = await call(`/_demo?key=covers/a1.jpg&caplist=avif,jpg`, {}, { DEMO_PAGE: "on" });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("text/html");
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    const html = new TextDecoder().decode(body);
    for (const label of ["Chrome (Accept)", "Safari 15 (Accept)", "okhttp, caplist=webp,jpg", "caplist=jpg", "_400_400"]) expect(html).toContain(label);
    expect(html).toContain('const KEY = "covers/a1.jpg"');
    expect(html).toContain('const CAPLIST = "avif,jpg"');
  });

  it("opens on a key that exists, and shows how to push one for a key that does not", async () => {
    const stem = `${uniquePrefix()}/here`;
    await put(`${stem}.png`, await encodeTo("png", gradient(8, 8)));
    const found = new TextDecoder().decode((await call(`/_demo?key=${stem}.png`, {}, { DEMO_PAGE: "on" })).body);
    expect(found).not.toContain('id="missing"');
    const absent = new TextDecoder().decode((await call(`/_demo?key=${uniquePrefix()}/nothing.jpg`, {}, { DEMO_PAGE: "on" })).body);
    expect(absent).toContain('id="missing"');
    expect(absent).toContain("curl -X PUT --data-binary @photo.jpg");
  });

  it("escapes what the user typed", async () => {
    const { body } = await call(`/_demo?key=${encodeURIComponent('"><script>alert(1)</script>')}`, {}, { DEMO_PAGE: "on" });
    const html = new TextDecoder().decode(body);
    expect(html).not.toContain("<script>alert(1)</script>");
    expect(html).toContain("&#34;&#62;&#60;script&#62;");
  });

  it("is a JSON 404 when disabled (the production setting)", async () => {
    const { res, body } = await call(`/_demo`, {}, { DEMO_PAGE: "off" });
    expect(res.status).toBe(404);
    expect(JSON.parse(new TextDecoder().decode(body)).error).toBe("not_found");
  });
});
