import { describe, expect, it } from "vitest";
import { AppError } from "../src/errors";
import type { FormatId } from "../src/formats";
import { negotiate } from "../src/negotiate";
import { matchRange, parseAccept } from "../src/negotiate/accept";
import { BROWSERS } from "./helpers";

const PRIORITY: FormatId[] = ["avif", "heic", "webp", "jpg", "png", "gif"];
const byAccept = (accept: string | null, urlFormat: FormatId = "jpg") =>
  negotiate({ caplist: null, accept, urlFormat }, PRIORITY);
const byCaplist = (caplist: string, urlFormat: FormatId = "jpg") => negotiate({ caplist, accept: BROWSERS.chrome, urlFormat }, PRIORITY);

describe("Accept parsing", () => {
  it("reads q-values, case and spaces", () => {
    expect(parseAccept(" Image/AVIF ; Q=0.5 ,image/webp;q=0 , */*")).toEqual([
      { range: "image/avif", q: 0.5 },
      { range: "image/webp", q: 0 },
      { range: "*/*", q: 1 },
    ]);
  });

  it("drops ranges with malformed weights or types instead of guessing", () => {
    expect(parseAccept("image/avif;q=2,image/webp;q=abc,garbage,image/png;q=0.25")).toEqual([{ range: "image/png", q: 0.25 }]);
  });

  it("lets the most specific range win (RFC 9110 12.5.1)", () => {
    const ranges = parseAccept("image/*;q=0.8,image/webp;q=0,*/*");
    expect(matchRange(ranges, ["image/webp"])).toEqual({ specificity: 3, q: 0 });
    expect(matchRange(ranges, ["image/jpeg"])).toEqual({ specificity: 2, q: 0.8 });
    expect(matchRange(parseAccept("text/html"), ["image/jpeg"])).toBeUndefined();
  });
});

describe("negotiation from Accept", () => {
  it.each([
    ["chrome", BROWSERS.chrome, ["avif", "webp", "jpg"]],
    ["firefox", BROWSERS.firefox, ["avif", "webp", "jpg", "png"]],
    ["safari 17", BROWSERS.safari17, ["avif", "heic", "webp", "jpg", "png"]],
    ["safari 15", BROWSERS.safari15, ["webp", "jpg", "png"]],
    ["curl", BROWSERS.curl, ["jpg"]],
    ["avif refused", BROWSERS.noAvif, ["webp"]],
  ] as const)("%s", (_name, accept, expected) => {
    expect(byAccept(accept)).toEqual({ candidates: expected, byAccept: true });
  });

  it("never turns image/* alone into AVIF, HEIC or WebP", () => {
    expect(byAccept("image/*").candidates).toEqual(["jpg"]);
    expect(byAccept("image/*", "png").candidates).toEqual(["png"]);
    // A .webp URL matched only through a wildcard gets what every client decodes.
    expect(byAccept("image/*;q=0.5, */*;q=0.1", "webp").candidates).toEqual(["jpg", "png"]);
  });

  it("a .heic, .avif or .webp URL is served in a format the client lists, never its own through image/*", () => {
    const chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    expect(byAccept(chrome, "heic").candidates).toEqual(["avif", "webp"]);
    expect(byAccept("image/webp,*/*", "heic").candidates).toEqual(["webp"]);
    expect(byAccept("image/*", "avif").candidates).toEqual(["jpg", "png"]);
    expect(byAccept("image/heic,image/*", "heic").candidates).toEqual(["heic"]);
    expect(byAccept("image/*,image/jpeg;q=0", "heic").candidates).toEqual(["png"]);
    expect(byAccept("text/html", "heic").candidates).toEqual(["jpg", "png"]);
  });

  it("serves only the URL's format when there is no Accept (okhttp, Glide, Coil) or a bare */* (curl)", () => {
    expect(byAccept(null)).toEqual({ candidates: ["jpg"], byAccept: true });
    expect(byAccept("", "png").candidates).toEqual(["png"]);
    expect(byAccept(null, "avif").candidates).toEqual(["avif"]);
    expect(byAccept("*/*", "avif").candidates).toEqual(["avif"]);
    expect(byAccept("*/*;q=0.8", "webp").candidates).toEqual(["webp"]);
    // A browser's navigation names other types: the wildcard rule stays.
    expect(byAccept("text/html,*/*;q=0.8", "webp").candidates).toEqual(["jpg", "png"]);
  });

  it("joins several Accept lines as Headers.get does", () => {
    const h = new Headers();
    h.append("Accept", "image/webp");
    h.append("Accept", "image/avif;q=0.9");
    expect(byAccept(h.get("Accept")).candidates).toEqual(["avif", "webp"]);
  });

  it("honours q=0 on the URL's own format even under a wildcard", () => {
    for (const refusing of ["image/jpeg;q=0,image/*", "image/jpeg;q=0", "*/*;q=0"]) {
      expect(() => byAccept(refusing)).toThrow(expect.objectContaining({ status: 406, code: "not_acceptable" }));
    }
    expect(byAccept("image/jpeg;q=0,image/webp").candidates).toEqual(["webp"]);
  });

  it("disregards an Accept that names nothing we serve (RFC 9110 12.5.1) rather than 406", () => {
    expect(byAccept("text/html,application/xhtml+xml").candidates).toEqual(["jpg"]);
  });

  it("accepts the image/jpg and image/heif aliases", () => {
    expect(byAccept("image/heif,image/jpg", "png").candidates).toEqual(["heic", "jpg"]);
  });
});

describe("negotiation from caplist", () => {
  it("orders the caplist by server priority and ignores Accept", () => {
    expect(byCaplist("jpg,webp,avif")).toEqual({ candidates: ["avif", "webp", "jpg"], byAccept: false });
    expect(byCaplist("webp,jpg").candidates).toEqual(byCaplist("jpg,webp").candidates);
  });

  it("is authoritative: the URL's own format is not added", () => {
    expect(byCaplist("webp", "jpg").candidates).toEqual(["webp"]);
  });

  it("is case-insensitive, takes aliases, ignores unknown tokens and blanks", () => {
    expect(byCaplist(" JPEG , HEIF,jxl,,GIF").candidates).toEqual(["heic", "jpg", "gif"]);
  });

  it("refuses a caplist with no known format", () => {
    for (const bad of ["", "jxl,bmp", " , "]) {
      try {
        byCaplist(bad);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(AppError);
        expect((e as AppError).status).toBe(400);
        expect((e as AppError).code).toBe("bad_caplist");
      }
    }
  });

  it("follows a configured priority", () => {
    expect(negotiate({ caplist: "avif,webp,jpg", accept: null, urlFormat: "jpg" }, ["webp", "avif", "jpg"]).candidates).toEqual([
      "webp",
      "avif",
      "jpg",
    ]);
  });
});
