/** Size policies through the worker: open, allowlist, and signed URLs with key rotation. */
import { beforeAll, describe, expect, it } from "vitest";
import { signPath } from "../src/variants/sign";
import { call, encodeTo, gradient, put, uniquePrefix } from "./helpers";

const KEY_OLD = "k3y-for-tests-0123456789abcdef0123";
const KEY_NEW = "n3w-key-for-tests-fedcba9876543210";
const json = (b: ArrayBuffer) => JSON.parse(new TextDecoder().decode(b));

let stem: string;
beforeAll(async () => {
  stem = `${uniquePrefix()}/cover`;
  await put(`${stem}.jpg`, await encodeTo("jpg", gradient(640, 480)));
});

describe("allowlist", () => {
  const vars = { SIZE_POLICY: "allowlist", ALLOWED_SIZES: "579x772,405x540,300x0" };

  it("serves listed sizes and the full size", async () => {
    expect((await call(`/${stem}_405_540.jpg?caplist=jpg`, {}, vars)).image).toEqual({ format: "jpg", width: 360, height: 480 });
    expect((await call(`/${stem}_300_0.jpg?caplist=jpg`, {}, vars)).image).toEqual({ format: "jpg", width: 300, height: 225 });
    expect((await call(`/${stem}.jpg?caplist=jpg`, {}, vars)).res.status).toBe(200);
  });

  it("refuses any other size with a JSON 403 before any work", async () => {
    const { res, body } = await call(`/${stem}_301_0.jpg?caplist=jpg`, {}, vars);
    expect(res.status).toBe(403);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(json(body)).toMatchObject({ error: "size_not_allowed", message: expect.any(String) });
  });
});

describe("signed", () => {
  const vars = { SIZE_POLICY: "signed", ALLOWED_SIZES: "405x540", URL_SIGNING_KEYS: `${KEY_NEW},${KEY_OLD}` };

  it("serves a size signed with any configured key (rotation)", async () => {
    for (const key of [KEY_OLD, KEY_NEW]) {
      const sig = await signPath(`/${stem}_200_200.jpg`, key);
      const { res, image } = await call(`/${stem}_200_200.jpg?caplist=webp&sig=${sig}`, {}, vars);
      expect(res.status).toBe(200);
      expect(image).toEqual({ format: "webp", width: 200, height: 200 });
    }
  });

  it("matches the sign-url script's known answer", async () => {
    // `node scripts/sign-url.mjs k3y-for-tests-0123456789abcdef0123 /covers/a1_300_0.jpg`
    expect(await signPath("/covers/a1_300_0.jpg", KEY_OLD)).toBe("0wgT-KHWMOvSwLC8qaG9ldl2U0YwaGH-0wvn-XHg8SA");
  });

  it("needs no signature for allowlisted sizes", async () => {
    expect((await call(`/${stem}_405_540.jpg?caplist=jpg`, {}, vars)).res.status).toBe(200);
  });

  it("refuses a missing, wrong, foreign-key or other-path signature", async () => {
    const other = await signPath(`/${stem}_200_201.jpg`, KEY_OLD);
    const foreign = await signPath(`/${stem}_200_200.jpg`, "some-other-key-0123456789abcdef0123");
    for (const [query, code] of [
      ["", "signature_required"],
      ["&sig=AAAA", "bad_signature"],
      ["&sig=***", "bad_signature"],
      [`&sig=${other}`, "bad_signature"],
      [`&sig=${foreign}`, "bad_signature"],
    ]) {
      const { res, body } = await call(`/${stem}_200_200.jpg?caplist=jpg${query}`, {}, vars);
      expect(res.status, query).toBe(403);
      expect(json(body).error).toBe(code);
    }
  });

  it("refuses to start without a signing key", async () => {
    const { res, body } = await call(`/${stem}.jpg`, {}, { SIZE_POLICY: "signed", URL_SIGNING_KEYS: "" });
    expect(res.status).toBe(500);
    expect(json(body)).toMatchObject({ error: "config_invalid", message: expect.stringContaining("URL_SIGNING_KEYS") });
  });
});
