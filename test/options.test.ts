/**
 * The URL's options (width, height, fit, gravity, quality, dpr, format, background), Client
 * Hints and Save-Data, inside workerd with real R2, Cache and codecs: each is asserted on the
 * decoded image it yields, and on the name (the cache entry) it shares with its spellings.
 */
import { describe, expect, it } from "vitest";
import { thumbHashToApproximateAspectRatio, thumbHashToRGBA } from "thumbhash";
import { decode, type Pixels } from "../src/produce/codec-session";
import { signPath } from "../src/variants/sign";
import { call, encodeTo, fixture, put, uniquePrefix, type Fetched } from "./helpers";

const json = (f: Fetched) => JSON.parse(new TextDecoder().decode(f.body));

/** Mean of R, G and B over a region. */
function mean(p: Pixels, x0 = 0, y0 = 0, w = p.width, h = p.height): number {
  let sum = 0;
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) for (let c = 0; c < 3; c++) sum += p.data[(y * p.width + x) * 4 + c];
  return sum / (w * h * 3);
}

function meanDiff(a: Pixels, b: Pixels): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) sum += Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]);
  return sum / ((a.data.length / 4) * 3);
}

/** A 400x200 PNG, black on its left half and white on its right: where a crop lands shows in its mean. */
async function halves(): Promise<string> {
  const w = 400;
  const h = 200;
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(x < w / 2 ? [0, 0, 0, 255] : [255, 255, 255, 255], (y * w + x) * 4);
  const stem = `${uniquePrefix()}/halves`;
  await put(`${stem}.png`, await encodeTo("png", { data, width: w, height: h }));
  return stem;
}

async function parrots(): Promise<string> {
  const stem = `${uniquePrefix()}/parrots`;
  await put(`${stem}.png`, fixture("kodim23Png"));
  return stem;
}

const png = async (f: Fetched) => {
  expect(f.res.status, new TextDecoder().decode(f.body).slice(0, 200)).toBe(200);
  return decode("png", f.body);
};

describe("width, height, fit", () => {
  it("width/w and height/h name the same variant as _W_H: one cache entry", async () => {
    const stem = await parrots();
    const first = await call(`/${stem}.png?width=300&caplist=webp`);
    expect(first.image).toEqual({ format: "webp", width: 300, height: 200 });
    expect(first.res.headers.get("X-Image-Source")).toBe("transcode");
    for (const path of [`/${stem}.png?w=300&caplist=webp`, `/${stem}_300_0.png?caplist=webp`]) {
      const again = await call(path);
      expect(again.image).toEqual({ format: "webp", width: 300, height: 200 });
      expect(again.res.headers.get("X-Image-Source"), path).toBe("cache");
    }
    const both = await call(`/${stem}.png?w=200&h=200&caplist=webp`);
    expect(both.image).toEqual({ format: "webp", width: 200, height: 200 });
    const conflict = await call(`/${stem}_300_0.png?width=200`);
    expect(conflict.res.status).toBe(400);
    expect(json(conflict).error).toBe("conflicting_size");
  });

  it("fit: cover and crop fill the box, contain and scale-down fit inside it, pad letterboxes on the background", async () => {
    const stem = await parrots();
    for (const [fit, size] of [["cover", [300, 300]], ["crop", [300, 300]], ["contain", [300, 200]], ["scale-down", [300, 200]], ["pad", [300, 300]]] as const) {
      const got = await call(`/${stem}.png?width=300&height=300&fit=${fit}&caplist=png`);
      expect(got.image, fit).toEqual({ format: "png", width: size[0], height: size[1] });
    }
    const padded = await png(await call(`/${stem}.png?width=300&height=300&fit=pad&background=%23ff0000&caplist=png`));
    // 200 rows of image centred on 300: bands of 50 rows above and below, pure red.
    for (const y of [10, 290]) expect([...padded.data.subarray((y * 300 + 150) * 4, (y * 300 + 150) * 4 + 4)], `row ${y}`).toEqual([255, 0, 0, 255]);
    expect(mean(padded, 100, 120, 100, 60)).not.toBeCloseTo(85, 0);
    // Never upscaled: a box larger than the image keeps the image's pixels, the box's shape.
    const big = await call(`/${stem}.png?width=2000&height=2000&fit=pad&caplist=png`);
    expect(big.image).toEqual({ format: "png", width: 768, height: 768 });
    const contained = await call(`/${stem}.png?width=2000&height=1000&fit=contain&caplist=png`);
    expect(contained.image).toEqual({ format: "png", width: 768, height: 512 });
  });
});

describe("gravity", () => {
  it("a side or a focal point moves the cover crop; the centre stays the default", async () => {
    const stem = await halves();
    const at = async (q: string) => mean(await png(await call(`/${stem}.png?w=100&h=100&caplist=png${q}`)));
    expect(await at("&gravity=left")).toBeLessThan(5);
    expect(await at("&gravity=right")).toBeGreaterThan(250);
    expect(await at("&g=0.9x0.5")).toBeGreaterThan(250);
    expect(await at("&gravity=0.1x0.5")).toBeLessThan(5);
    const centre = await at("");
    expect(centre).toBeGreaterThan(100);
    expect(centre).toBeLessThan(155);
    // The focal point names a variant of its own, in the path too.
    expect(mean(await png(await call(`/${stem}_100_100-f0.90x0.50.png?caplist=png`)))).toBeGreaterThan(250);
  });

  it("a focal point is a point of the image as shown, whatever its EXIF orientation", async () => {
    for (const [kind, size, gravities] of [["landscape", "_100_200", ["left", "right"]], ["portrait", "_300_100", ["top", "bottom"]]] as const) {
      for (const gravity of gravities) {
        const stem1 = `${uniquePrefix()}/${kind}1`;
        await put(`${stem1}.jpg`, fixture(`${kind}1` as never));
        const upright = await png(await call(`/${stem1}${size}.jpg?caplist=png&gravity=${gravity}`));
        for (let n = 2; n <= 8; n++) {
          const stem = `${uniquePrefix()}/${kind}${n}`;
          await put(`${stem}.jpg`, fixture(`${kind}${n}` as never));
          const turned = await png(await call(`/${stem}${size}.jpg?caplist=png&gravity=${gravity}`));
          expect(meanDiff(turned, upright), `${kind}${n} ${gravity}`).toBeLessThan(8);
        }
      }
    }
  });
});

describe("quality, dpr, Client Hints, Save-Data, format", () => {
  it("quality: a number or a named level; the configured level names the default variant", async () => {
    const stem = await parrots();
    const base = await call(`/${stem}_400_0.png?caplist=jpg`);
    const low = await call(`/${stem}_400_0.png?caplist=jpg&q=50`);
    expect(low.image).toEqual({ format: "jpg", width: 400, height: 267 });
    expect(low.body.byteLength).toBeLessThan(base.body.byteLength * 0.75);
    const named = await call(`/${stem}_400_0.png?caplist=jpg&quality=low`);
    const numbered = await call(`/${stem}_400_0.png?caplist=jpg&quality=75`);
    expect(numbered.res.headers.get("X-Image-Source")).toBe("cache");
    expect(new Uint8Array(numbered.body)).toEqual(new Uint8Array(named.body));
    const same = await call(`/${stem}_400_0.png?caplist=jpg&q=85`);
    expect(same.res.headers.get("X-Image-Source")).toBe("cache");
    // A quality of the full-size image re-encodes it (not the original's bytes).
    const full = await call(`/${stem}.png?caplist=webp&q=50`);
    expect(full.image).toEqual({ format: "webp", width: 768, height: 512 });
  });

  it("dpr and Sec-CH-DPR scale the asked size (at most 3x), named in Vary when a hint did it", async () => {
    const stem = await parrots();
    expect((await call(`/${stem}.png?width=150&dpr=2&caplist=webp`)).image).toEqual({ format: "webp", width: 300, height: 200 });
    expect((await call(`/${stem}.png?width=100&dpr=5&caplist=webp`)).image).toEqual({ format: "webp", width: 300, height: 200 });
    const hinted = await call(`/${stem}_150_0.png?caplist=webp`, { headers: { "Sec-CH-DPR": "2" } });
    expect(hinted.image).toEqual({ format: "webp", width: 300, height: 200 });
    expect(hinted.res.headers.get("Vary")).toContain("Sec-CH-DPR");
    expect(hinted.res.headers.get("Accept-CH")).toContain("Sec-CH-DPR");
    // An explicit dpr wins over the hint.
    expect((await call(`/${stem}_150_0.png?caplist=webp&dpr=1`, { headers: { "Sec-CH-DPR": "3" } })).image).toEqual({ format: "webp", width: 150, height: 100 });
    const auto = await call(`/${stem}.png?width=auto&caplist=webp`, { headers: { "Sec-CH-Width": "320" } });
    expect(auto.image).toEqual({ format: "webp", width: 320, height: 213 });
    expect(auto.res.headers.get("Vary")).toContain("Sec-CH-Width");
  });

  it("Save-Data: on serves the low quality level, and says so in Vary", async () => {
    const stem = await parrots();
    const plain = await call(`/${stem}_500_0.png?caplist=webp`);
    const saving = await call(`/${stem}_500_0.png?caplist=webp`, { headers: { "Save-Data": "on" } });
    expect(saving.image).toEqual({ format: "webp", width: 500, height: 333 });
    expect(saving.body.byteLength).toBeLessThan(plain.body.byteLength);
    expect(saving.res.headers.get("Vary")).toContain("Save-Data");
    expect(plain.res.headers.get("Vary")).toBeNull();
  });

  it("format= picks the format inside the caplist's rules", async () => {
    const stem = await parrots();
    expect((await call(`/${stem}_200_0.png?format=webp`, { headers: { Accept: "image/jpeg" } })).image).toEqual({ format: "webp", width: 200, height: 133 });
    expect((await call(`/${stem}_200_0.png?format=jpeg&caplist=jpg,webp`)).image).toEqual({ format: "jpg", width: 200, height: 133 });
    const refused = await call(`/${stem}_200_0.png?format=webp&caplist=jpg`);
    expect(refused.res.status).toBe(406);
    expect((await call(`/${stem}_200_0.png?format=auto&caplist=webp`)).image).toEqual({ format: "webp", width: 200, height: 133 });
  });

  it("a bad value is a 400 naming what is valid", async () => {
    const stem = await parrots();
    for (const [query, says] of [["width=abc", "width"], ["w=0", "width"], ["fit=stretch", "scale-down"], ["gravity=middle", "focal point"], ["q=0", "quality"], ["dpr=x", "dpr"], ["background=blue", "background"], ["format=bmp", "format"], ["w=100&width=200", "twice"]]) {
      const got = await call(`/${stem}.png?${query}`);
      expect(got.res.status, query).toBe(400);
      expect(json(got).error, query).toBe("bad_option");
      expect(json(got).message, query).toContain(says);
    }
  });
});

describe("signed URLs cover the options", () => {
  it("a signed variant's options cannot be changed: another size, fit or quality is refused", async () => {
    const stem = await parrots();
    const key = "k".repeat(40);
    const vars = { SIZE_POLICY: "signed", URL_SIGNING_KEYS: key };
    const sig = await signPath(`/${stem}_300_300.png`, key);
    expect((await call(`/${stem}_300_300.png?caplist=webp&sig=${sig}`, {}, vars)).image).toEqual({ format: "webp", width: 300, height: 300 });
    // The same variant spelled with the query: the same signature holds.
    expect((await call(`/${stem}.png?w=300&h=300&caplist=webp&sig=${sig}`, {}, vars)).image).toEqual({ format: "webp", width: 300, height: 300 });
    for (const edit of ["w=600&h=600", "w=300&h=300&fit=pad", "w=300&h=300&q=30", "w=300&h=300&dpr=2", "w=300&h=300&gravity=left"]) {
      const got = await call(`/${stem}.png?${edit}&caplist=webp&sig=${sig}`, {}, vars);
      expect(got.res.status, edit).toBe(403);
    }
    // Options are signed as their canonical path: what scripts/sign-url.mjs signs.
    const padSig = await signPath(`/${stem}_300_300-pad.png`, key);
    expect((await call(`/${stem}.png?w=300&h=300&fit=pad&caplist=webp&sig=${padSig}`, {}, vars)).image).toEqual({ format: "webp", width: 300, height: 300 });
  });
});

describe("smart crop and the stored focal point", () => {
  /** A 600x300 PNG: flat grey, with a saturated, detailed subject (a red-and-yellow checker) near the right edge. */
  async function offCentre(): Promise<{ stem: string; bytes: ArrayBuffer }> {
    const w = 600;
    const h = 300;
    const data = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const inSubject = x >= 470 && x < 570 && y >= 100 && y < 200;
        const check = ((x >> 3) + (y >> 3)) % 2 === 0;
        data.set(inSubject ? (check ? [230, 30, 30, 255] : [250, 220, 40, 255]) : [128, 128, 128, 255], (y * w + x) * 4);
      }
    }
    const stem = `${uniquePrefix()}/subject`;
    const bytes = await encodeTo("png", { data, width: w, height: h });
    return { stem, bytes };
  }
  /** Share of the output's pixels that belong to the subject (far from grey). */
  const subjectShare = (p: Pixels) => {
    let n = 0;
    for (let i = 0; i < p.data.length; i += 4) if (Math.abs(p.data[i] - 128) + Math.abs(p.data[i + 1] - 128) + Math.abs(p.data[i + 2] - 128) > 90) n++;
    return n / (p.width * p.height);
  };

  it("gravity=auto keeps an off-centre subject that the centred crop cuts away", async () => {
    const { stem, bytes } = await offCentre();
    await put(`${stem}.png`, bytes);
    const centred = await png(await call(`/${stem}_200_200.png?caplist=png`));
    const smart = await call(`/${stem}_200_200.png?caplist=png&gravity=auto`);
    const smartPixels = await png(smart);
    expect([smartPixels.width, smartPixels.height]).toEqual([200, 200]);
    // The centred window (x 200-400 of the source, scaled 2:3) holds none of the subject.
    expect(subjectShare(centred)).toBe(0);
    // The whole subject (100x100 of the source, 67x67 here) is inside the smart window.
    expect(subjectShare(smartPixels)).toBeGreaterThan(0.1);
    expect(smart.res.headers.get("Server-Timing")).toMatch(/smartcrop;dur=/);
    // It is a variant of its own, in the path too.
    expect((await call(`/${stem}_200_200-auto.png?caplist=png`)).res.headers.get("X-Image-Source")).toBe("cache");
  });

  it("a focal point pushed with the original places its crops by default, and gravity=auto defers to it", async () => {
    const { stem, bytes } = await offCentre();
    const res = await call(`/_api/objects/${stem}.png`, { method: "PUT", body: bytes, headers: { Authorization: "Bearer test-token-0123456789abcdef", "X-Image-Focal-Point": "0.86,0.5" } });
    expect(res.res.status).toBe(201);
    const meta = await call(`/_api/objects/${stem}.png`, { headers: { Authorization: "Bearer test-token-0123456789abcdef" } });
    expect(json(meta).focalPoint).toBe("0.86,0.50");
    const byDefault = await png(await call(`/${stem}_200_200.png?caplist=png`));
    expect(subjectShare(byDefault)).toBeGreaterThan(0.1);
    const auto = await png(await call(`/${stem}_200_200.png?caplist=png&gravity=auto`));
    expect(meanDiff(auto, byDefault)).toBeLessThan(1);
    // A gravity in the URL wins over it.
    expect(subjectShare(await png(await call(`/${stem}_200_200.png?caplist=png&gravity=left`)))).toBe(0);
    const bad = await call(`/_api/objects/${stem}.png`, { method: "PUT", body: bytes, headers: { Authorization: "Bearer test-token-0123456789abcdef", "X-Image-Focal-Point": "middle" } });
    expect(bad.res.status).toBe(400);
    expect(json(bad).error).toBe("bad_focal_point");
  });
});

describe("placeholders", () => {
  it("placeholder=thumbhash answers the ThumbHash and the shown size; it decodes to the image's aspect and colours, and is cached", async () => {
    const stem = await parrots();
    const first = await call(`/${stem}.png?placeholder=thumbhash`);
    expect(first.res.status).toBe(200);
    expect(first.res.headers.get("Content-Type")).toMatch(/^application\/json/);
    const p = json(first);
    expect(p).toMatchObject({ width: 768, height: 512 });
    const hash = Uint8Array.from(atob(p.thumbhash), (ch) => ch.charCodeAt(0));
    expect(hash.byteLength).toBeLessThan(40);
    // ThumbHash keeps the ratio coarsely (its own quantisation): 1.4 here for 1.5.
    expect(Math.abs(thumbHashToApproximateAspectRatio(hash) - 768 / 512)).toBeLessThan(0.15);
    // Its picture is the photo's, blurred: compared with the photo at the same size.
    const { w, h, rgba } = thumbHashToRGBA(hash);
    const photo = await png(await call(`/${stem}.png?w=${w}&h=${h}&caplist=png`));
    const rendered = { data: new Uint8ClampedArray(rgba), width: w, height: h };
    expect(meanDiff(rendered, photo)).toBeLessThan(40);
    const second = await call(`/${stem}.png?placeholder=thumbhash`);
    expect(second.res.headers.get("X-Image-Source")).toBe("cache");
    expect(json(second)).toEqual(p);
    // A portrait camera photo (EXIF orientation applied) gives its shown size.
    const street = `${uniquePrefix()}/street`;
    await put(`${street}.jpg`, fixture("cameraJpeg"));
    expect(json(await call(`/${street}.jpg?placeholder=thumbhash`))).toMatchObject({ width: 1944, height: 2592 });
    expect((await call(`/${uniquePrefix()}/none.jpg?placeholder=thumbhash`)).res.status).toBe(404);
  });

  it("placeholder=blur is a tiny image of the image's aspect, under 1 KB, negotiated like any variant", async () => {
    const stem = await parrots();
    const got = await call(`/${stem}.png?placeholder=blur&caplist=webp,jpg`);
    expect(got.image).toEqual({ format: "webp", width: 32, height: 21 });
    expect(got.body.byteLength).toBeLessThan(1024);
    expect((await call(`/${stem}.png?placeholder=blur&w=300`)).res.status).toBe(400);
    expect((await call(`/${stem}.png?placeholder=lqip`)).res.status).toBe(400);
  });
});

describe("canonical names", () => {
  it("an option spelled in the path other than canonically is a 400 naming the canonical form", async () => {
    const stem = await parrots();
    for (const [path, canonical] of [["_100_100-f0.50x0.50", "_100_100"], ["_100_100-q085", "_100_100-q85"], ["_100_100-pad-auto", "_100_100-pad"], ["_100_0-pad", "_100_0"]]) {
      const got = await call(`/${stem}${path}.png?caplist=png`);
      expect(got.res.status, path).toBe(400);
      expect(json(got).message, path).toContain(`${stem}${canonical}.png`);
    }
    // The canonical path itself is served.
    expect((await call(`/${stem}_100_100-pad-bg000000.png?caplist=png`)).image).toEqual({ format: "png", width: 100, height: 100 });
  });
});
