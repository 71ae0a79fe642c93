/*
 * An AV1 decoder over libaom (Debian bookworm aom 3.6.0), for animated AVIF sources: the
 * worker (src/codecs/av1dec.ts) reads the image sequence's sample tables and hands over one
 * sample (a temporal unit's OBUs, AV1-ISOBMFF 2.4) at a time; each decoded picture is turned
 * into the RGBA canvas here, with the alpha track's picture (a second decoder, the same
 * module) as its alpha. Only the reference frames and one canvas are held, never the animation.
 *
 * Colour (ITU-T H.273): Y'CbCr to R'G'B' by the matrix the container's `colr` or the sequence
 * header names (BT.601, BT.709, BT.2020 non-constant, identity), limited or full range, any
 * bit depth (8, 10, 12) down to 8 bits, 4:2:0/4:2:2/4:4:4/monochrome with each chroma sample
 * spread over the luma samples it covers. No transfer or primaries conversion, as libavif's
 * own RGB conversion does not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <aom/aom_decoder.h>
#include <aom/aomdx.h>

/* Reports an error to JS and does not return (src/codecs/standalone.ts). */
extern void js_throw(const char *message) __attribute__((noreturn));

typedef struct {
  aom_codec_ctx_t codec;
  aom_image_t *img; /* the last picture, owned by libaom until the next decode */
  uint8_t *buf;     /* the sample being decoded */
  size_t cap;
} Dec;

Dec *dec_new(void) {
  Dec *d = calloc(1, sizeof(Dec));
  if (!d) js_throw("av1 decode failed: out of memory");
  aom_codec_dec_cfg_t cfg = { 0 };
  cfg.threads = 1;
  /* 8-bit streams in 8-bit frame buffers (half the memory of libaom's 16-bit default path). */
  cfg.allow_lowbitdepth = 1;
  if (aom_codec_dec_init(&d->codec, aom_codec_av1_dx(), &cfg, 0)) js_throw("av1 decode failed: decoder init");
  return d;
}

/* Room for a sample of `len` bytes, which the caller fills before `dec_decode`. */
uint8_t *dec_buffer(Dec *d, int len) {
  if (len < 0) js_throw("av1 decode failed: bad sample size");
  if ((size_t)len > d->cap) {
    free(d->buf);
    d->buf = malloc(len);
    if (!d->buf) js_throw("av1 decode failed: out of memory");
    d->cap = len;
  }
  return d->buf;
}

/* Decodes the sample in the buffer; 1 when it shows a picture, 0 when it shows none. */
int dec_decode(Dec *d, int len) {
  if (aom_codec_decode(&d->codec, d->buf, (size_t)len, NULL)) {
    const char *detail = aom_codec_error_detail(&d->codec);
    js_throw(detail ? detail : aom_codec_error(&d->codec));
  }
  aom_codec_iter_t iter = NULL;
  aom_image_t *img, *last = NULL;
  /* A temporal unit shows at most one frame (one operating point); the last one is kept. */
  while ((img = aom_codec_get_frame(&d->codec, &iter))) last = img;
  d->img = last;
  return last != NULL;
}

int dec_width(Dec *d) { return d->img ? (int)d->img->d_w : 0; }
int dec_height(Dec *d) { return d->img ? (int)d->img->d_h : 0; }

void dec_free(Dec *d) {
  if (!d) return;
  aom_codec_destroy(&d->codec);
  free(d->buf);
  free(d);
}

static inline uint8_t clamp8f(float v) { return v <= 0.f ? 0 : v >= 255.f ? 255 : (uint8_t)(v + 0.5f); }

typedef struct {
  float yOff, yDiv, cOff, cDiv, kr, kb, kg, aOff, aDiv;
  int identity, mono;
} Coeffs;

/*
 * One row: `hbd` samples are 16-bit words; chroma sample x >> xs covers luma samples x. Inlined
 * twice (8-bit and 16-bit) so the inner loop has no per-sample branch on the depth.
 */
static inline void convert_row(const aom_image_t *c, const aom_image_t *a, const Coeffs *k, int y, int width, uint8_t *p, const int hbd, const int ahbd) {
  const int xs = c->x_chroma_shift, cy = y >> c->y_chroma_shift;
  const uint8_t *Yr = c->planes[0] + (size_t)y * c->stride[0];
  const uint8_t *Ur = c->planes[1] + (size_t)cy * c->stride[1];
  const uint8_t *Vr = c->planes[2] + (size_t)cy * c->stride[2];
  const uint8_t *Ar = a ? a->planes[0] + (size_t)y * a->stride[0] : NULL;
#define AT(row, x, wide) ((wide) ? ((const uint16_t *)(row))[x] : (row)[x])
  for (int x = 0; x < width; x++, p += 4) {
    const float Y = (AT(Yr, x, hbd) - k->yOff) / k->yDiv;
    float r, g, b;
    if (k->mono) {
      r = g = b = Y;
    } else if (k->identity) {
      /* Identity (GBR): the planes are G, B and R themselves. */
      g = Y;
      b = (AT(Ur, x >> xs, hbd) - k->yOff) / k->yDiv;
      r = (AT(Vr, x >> xs, hbd) - k->yOff) / k->yDiv;
    } else {
      const float Cb = (AT(Ur, x >> xs, hbd) - k->cOff) / k->cDiv;
      const float Cr = (AT(Vr, x >> xs, hbd) - k->cOff) / k->cDiv;
      r = Y + 2.f * (1.f - k->kr) * Cr;
      b = Y + 2.f * (1.f - k->kb) * Cb;
      g = (Y - k->kr * r - k->kb * b) / k->kg;
    }
    p[0] = clamp8f(255.f * r);
    p[1] = clamp8f(255.f * g);
    p[2] = clamp8f(255.f * b);
    p[3] = Ar ? clamp8f(255.f * (AT(Ar, x, ahbd) - k->aOff) / k->aDiv) : 255;
  }
#undef AT
}

/*
 * Writes the picture of `color` (and the luma of `alpha`'s, when given) into `out`, RGBA,
 * `width` x `height`. `matrix` is H.273 MatrixCoefficients and `full` the range flag from the
 * container, or -1 to take the sequence header's. Returns 0 when a picture's size is not the
 * canvas'.
 */
int dec_rgba(Dec *color, Dec *alpha, uint8_t *out, int width, int height, int matrix, int full) {
  const aom_image_t *c = color->img;
  const aom_image_t *a = alpha ? alpha->img : NULL;
  if (!c || (int)c->d_w != width || (int)c->d_h != height) return 0;
  if (alpha && (!a || (int)a->d_w != width || (int)a->d_h != height)) return 0;
  if (matrix < 0) matrix = c->mc;
  if (full < 0) full = c->range == AOM_CR_FULL_RANGE;
  Coeffs k;
  const int depth = c->bit_depth;
  const float scale = (float)(1 << (depth - 8));
  const float max = (float)((1 << depth) - 1);
  /* Normalised Y' in [0, 1] and Cb, Cr in [-0.5, 0.5] (H.273 8.3: E'Y, E'PB, E'PR). */
  k.yOff = full ? 0.f : 16.f * scale;
  k.yDiv = full ? max : 219.f * scale;
  k.cOff = (float)(1 << (depth - 1));
  k.cDiv = full ? max : 224.f * scale;
  /* Kr, Kb (H.273 table 4); unspecified (2) and reserved taken as BT.601, as libavif does. */
  k.kr = 0.299f, k.kb = 0.114f;
  if (matrix == 1) k.kr = 0.2126f, k.kb = 0.0722f;
  else if (matrix == 4) k.kr = 0.30f, k.kb = 0.11f;
  else if (matrix == 7) k.kr = 0.212f, k.kb = 0.087f;
  else if (matrix == 9 || matrix == 10) k.kr = 0.2627f, k.kb = 0.0593f;
  k.kg = 1.f - k.kr - k.kb;
  k.identity = matrix == 0;
  k.mono = c->monochrome;
  /* Alpha: its own depth and range (AVIF 1.1 4: an alpha plane is usually full range). */
  const int aDepth = a ? (int)a->bit_depth : 8;
  const int aFull = a ? a->range == AOM_CR_FULL_RANGE : 1;
  const float aScale = (float)(1 << (aDepth - 8));
  k.aOff = aFull ? 0.f : 16.f * aScale;
  k.aDiv = aFull ? (float)((1 << aDepth) - 1) : 219.f * aScale;
  const int hbd = (c->fmt & AOM_IMG_FMT_HIGHBITDEPTH) != 0;
  const int ahbd = a && (a->fmt & AOM_IMG_FMT_HIGHBITDEPTH) != 0;
  for (int y = 0; y < height; y++) {
    uint8_t *p = out + (size_t)y * width * 4;
    if (hbd) convert_row(c, a, &k, y, width, p, 1, ahbd);
    else if (ahbd) convert_row(c, a, &k, y, width, p, 0, 1);
    else convert_row(c, a, &k, y, width, p, 0, 0);
  }
  return 1;
}

/* libaom's longjmp, thrown to JS instead (codecs/aom-throw.h). */
#define AOM_THROW_MESSAGE "av1 decode failed: corrupt or unsupported AV1 data"
#include "aom-throw.h"
