/*
 * An AV1 image sequence encoder over libaom (Debian bookworm aom 3.6.0), for animated AVIF:
 * the caller fills one RGBA canvas per frame, each frame is converted to YCbCr 4:2:0 and coded
 * as one temporal unit with inter prediction from the previous ones. No lookahead
 * (g_lag_in_frames 0): one frame in, one coded frame out, so only the reference frames are
 * held, never the animation. The container (ISOBMFF `avis`) is written by the worker
 * (src/codecs/av1seq.ts); this hands over each frame's OBUs without the temporal delimiter
 * (AV1-ISOBMFF 2.4: samples carry none) and the sequence header for `av1C`.
 *
 * Colour: sRGB pixels, coded as BT.601 full-range YCbCr (ITU-T H.273 MatrixCoefficients 6,
 * VideoFullRangeFlag 1), primaries BT.709 (1) and transfer sRGB (13), as @jsquash/avif codes
 * stills, and signalled in the sequence header; the worker writes the same in `colr`.
 *
 * Stills (`still`): the same encoder in libaom's all-intra mode, set as libavif sets it for a
 * single image (codec_aom.c: AOM_USAGE_ALL_INTRA, g_limit 1 so the sequence header is a
 * reduced still-picture header, no lag, key frames only, AOM_Q at one quantizer, post-processing
 * filters skipped), tuned for image quality at the on-demand speeds (see open_stream), from our
 * SIMD build of libaom; the worker writes its `meta` (src/codecs/av1seq.ts).
 *
 * Alpha (when asked for): a second encoder in the same instance codes the canvas's alpha as a
 * monochrome, full-range AV1 sequence (AVIF 1.1 4: an auxiliary alpha image; how libavif codes
 * it), one frame per colour frame, for the worker's auxiliary track. The glue notes whether any
 * frame had a pixel below 255, so the worker can leave an all-opaque alpha track out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <aom/aom_encoder.h>
#include <aom/aomcx.h>

/* Reports an error to JS and does not return (src/codecs/standalone.ts). */
extern void js_throw(const char *message) __attribute__((noreturn));

/* One AV1 encoder and the coded bytes of its latest frame. */
typedef struct {
  aom_codec_ctx_t codec;
  int open;
  aom_image_t *img;
  uint8_t *out;
  size_t size, cap;
  int key;
} Stream;

typedef struct {
  Stream color, alpha;
  int width, height, has_alpha, translucent;
  uint8_t *rgba;
  int64_t pts;
} Seq;

static void append(Stream *s, const uint8_t *data, size_t n) {
  if (s->size + n > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 65536;
    while (cap < s->size + n) cap *= 2;
    uint8_t *grown = realloc(s->out, cap);
    if (!grown) js_throw("av1 encode failed: out of memory");
    s->out = grown;
    s->cap = cap;
  }
  memcpy(s->out + s->size, data, n);
  s->size += n;
}

/* leb128 (AV1 4.10.5). */
static size_t leb128(const uint8_t *p, size_t avail, uint64_t *value) {
  *value = 0;
  for (size_t i = 0; i < 8 && i < avail; i++) {
    *value |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) return i + 1;
  }
  return 0;
}

/* Appends the OBUs of one temporal unit, leaving out temporal delimiters (obu_type 2). */
static void append_obus(Stream *s, const uint8_t *p, size_t n) {
  size_t at = 0;
  while (at < n) {
    uint8_t header = p[at];
    int type = (header >> 3) & 15;
    int ext = (header >> 2) & 1;
    int has_size = (header >> 1) & 1;
    size_t head = 1 + ext;
    uint64_t payload = 0;
    if (has_size) {
      size_t len = leb128(p + at + head, n - at - head, &payload);
      if (!len) js_throw("av1 encode failed: bad OBU size");
      head += len;
    } else {
      payload = n - at - head;
    }
    if (at + head + payload > n) js_throw("av1 encode failed: OBU past the packet");
    if (type != 2) append(s, p + at, head + payload);
    at += head + payload;
  }
}

static void collect(Stream *s) {
  const aom_codec_cx_pkt_t *pkt;
  aom_codec_iter_t iter = NULL;
  while ((pkt = aom_codec_get_cx_data(&s->codec, &iter))) {
    if (pkt->kind != AOM_CODEC_CX_FRAME_PKT) continue;
    append_obus(s, pkt->data.frame.buf, pkt->data.frame.sz);
    if (pkt->data.frame.flags & AOM_FRAME_IS_KEY) s->key = 1;
  }
}

/* Opens one encoder: 8-bit 4:2:0 (Main profile), or monochrome 4:0:0 for alpha. */
static void open_stream(Stream *st, int width, int height, int quantizer, int speed, int keyframes, int monochrome, int still) {
  aom_codec_iface_t *iface = aom_codec_av1_cx();
  aom_codec_enc_cfg_t cfg;
  if (aom_codec_enc_config_default(iface, &cfg, still ? AOM_USAGE_ALL_INTRA : AOM_USAGE_REALTIME)) js_throw("av1 encode failed: no default config");
  cfg.g_w = width;
  cfg.g_h = height;
  cfg.g_threads = 1;
  cfg.g_profile = 0; /* Main: 8-bit 4:2:0 and 4:0:0 */
  cfg.g_bit_depth = AOM_BITS_8;
  cfg.g_input_bit_depth = 8;
  cfg.g_timebase.num = 1;
  cfg.g_timebase.den = 1000; /* milliseconds, the container's timescale too */
  cfg.g_lag_in_frames = 0;
  cfg.rc_end_usage = AOM_Q;
  cfg.rc_min_quantizer = quantizer;
  cfg.rc_max_quantizer = quantizer;
  cfg.kf_mode = still ? AOM_KF_DISABLED : AOM_KF_AUTO;
  cfg.kf_min_dist = 0;
  cfg.kf_max_dist = still ? 0 : keyframes;
  /* One frame: libaom then writes still_picture and reduced_still_picture_header (AV1 5.5). */
  if (still) cfg.g_limit = 1;
  cfg.monochrome = monochrome;
  if (aom_codec_enc_init(&st->codec, iface, &cfg, 0)) js_throw("av1 encode failed: encoder init");
  st->open = 1;
  /* A refused control would leave libaom's default (cpu-used 0 is its slowest): fail instead. */
  aom_codec_ctx_t *c = &st->codec;
  int refused = aom_codec_control(c, AOME_SET_CPUUSED, speed) || aom_codec_control(c, AOME_SET_CQ_LEVEL, quantizer) ||
                aom_codec_control(c, AV1E_SET_COLOR_RANGE, AOM_CR_FULL_RANGE);
  if (!monochrome)
    refused = refused || aom_codec_control(c, AV1E_SET_COLOR_PRIMARIES, AOM_CICP_CP_BT_709) ||
              aom_codec_control(c, AV1E_SET_TRANSFER_CHARACTERISTICS, AOM_CICP_TC_SRGB) ||
              aom_codec_control(c, AV1E_SET_MATRIX_COEFFICIENTS, AOM_CICP_MC_BT_601);
  /* Stills at the on-demand speeds are tuned for image quality (libaom 3.12 tune=iq: aomcx.h,
     quantisation matrices, chroma delta-q, sharpness 7, guided by SSIMULACRA 2): at equal
     SSIMULACRA 2 against a mozjpeg q85 JPEG, cpu-used 8 took 0.825x the JPEG's bytes on Kodak
     and 0.845x on Unsplash photos at 1200w, against 0.898x and 0.915x with libaom 3.6's
     tune=ssim. The slow re-encode (cpu-used 5) keeps tune=ssim: its quality and its keep rule
     (no lower SSIM) were calibrated for it; with tune=iq its files came out larger than the
     fast ones at the re-encode's quality. */
  if (still)
    refused = refused || aom_codec_control(c, AOME_SET_TUNING, speed >= 6 ? AOM_TUNE_IQ : AOM_TUNE_SSIM) || aom_codec_control(c, AV1E_SET_SKIP_POSTPROC_FILTERING, 1);
  if (refused) js_throw(aom_codec_error_detail(c) ? aom_codec_error_detail(c) : "av1 encode failed: a setting was refused");
  st->img = aom_img_alloc(NULL, AOM_IMG_FMT_I420, width, height, 16);
  if (!st->img) js_throw("av1 encode failed: out of memory");
  if (monochrome) {
    /* libaom reads only the luma of a monochrome picture; neutral chroma all the same. */
    memset(st->img->planes[1], 128, (size_t)st->img->stride[1] * ((height + 1) / 2));
    memset(st->img->planes[2], 128, (size_t)st->img->stride[2] * ((height + 1) / 2));
  }
}

/*
 * `quantizer` 0-63 (libaom's scale; the caller maps AVIF quality to it as libavif does),
 * `speed` libaom's cpu-used, `keyframes` the longest run between key frames;
 * `alpha_quantizer` the alpha sequence's, or -1 for none (opaque); `still`: one all-intra
 * frame (a still AVIF's image and its alpha image) instead of a sequence.
 */
Seq *seq_new(int width, int height, int quantizer, int speed, int keyframes, int alpha_quantizer, int still) {
  Seq *s = calloc(1, sizeof(Seq));
  if (!s) js_throw("av1 encode failed: out of memory");
  s->width = width;
  s->height = height;
  open_stream(&s->color, width, height, quantizer, speed, keyframes, 0, still);
  if (alpha_quantizer >= 0) {
    s->has_alpha = 1;
    open_stream(&s->alpha, width, height, alpha_quantizer, speed, keyframes, 1, still);
  }
  s->rgba = malloc((size_t)width * height * 4);
  if (!s->rgba) js_throw("av1 encode failed: out of memory");
  return s;
}

/* The RGBA canvas the caller fills before each `seq_add`. */
uint8_t *seq_canvas(Seq *s) { return s->rgba; }

/* BT.601 full range, 16.16 fixed point: Y = .299R + .587G + .114B; Cb, Cr around 128. */
static inline uint8_t clamp8(int v) { return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v; }

static void to_yuv(Seq *s) {
  const int w = s->width, h = s->height;
  aom_image_t *img = s->color.img;
  for (int y = 0; y < h; y++) {
    const uint8_t *p = s->rgba + (size_t)y * w * 4;
    uint8_t *Y = img->planes[0] + (size_t)y * img->stride[0];
    for (int x = 0; x < w; x++, p += 4) Y[x] = clamp8((19595 * p[0] + 38470 * p[1] + 7471 * p[2] + 32768) >> 16);
  }
  /* Chroma from the mean of each 2x2 block (the last column or row repeated at odd sizes). */
  for (int cy = 0; cy < (h + 1) / 2; cy++) {
    uint8_t *U = img->planes[1] + (size_t)cy * img->stride[1];
    uint8_t *V = img->planes[2] + (size_t)cy * img->stride[2];
    const int y0 = 2 * cy, y1 = y0 + 1 < h ? y0 + 1 : y0;
    for (int cx = 0; cx < (w + 1) / 2; cx++) {
      const int x0 = 2 * cx, x1 = x0 + 1 < w ? x0 + 1 : x0;
      const uint8_t *a = s->rgba + ((size_t)y0 * w + x0) * 4, *b = s->rgba + ((size_t)y0 * w + x1) * 4;
      const uint8_t *c = s->rgba + ((size_t)y1 * w + x0) * 4, *d = s->rgba + ((size_t)y1 * w + x1) * 4;
      const int r = a[0] + b[0] + c[0] + d[0], g = a[1] + b[1] + c[1] + d[1], bl = a[2] + b[2] + c[2] + d[2];
      /* Sums of four: divide by 4 inside the shift (16 + 2). */
      U[cx] = clamp8(128 + ((-11059 * r - 21709 * g + 32768 * bl + 131072) >> 18));
      V[cx] = clamp8(128 + ((32768 * r - 27439 * g - 5329 * bl + 131072) >> 18));
    }
  }
}

/* The canvas's alpha into the alpha picture's luma; notes any pixel below 255. */
static void to_alpha(Seq *s) {
  const int w = s->width, h = s->height;
  aom_image_t *img = s->alpha.img;
  uint8_t below = 255;
  for (int y = 0; y < h; y++) {
    const uint8_t *p = s->rgba + (size_t)y * w * 4 + 3;
    uint8_t *A = img->planes[0] + (size_t)y * img->stride[0];
    for (int x = 0; x < w; x++, p += 4) {
      A[x] = *p;
      below &= *p;
    }
  }
  if (below != 255) s->translucent = 1;
}

static void encode(Stream *st, int64_t pts, int duration) {
  st->size = 0;
  st->key = 0;
  if (aom_codec_encode(&st->codec, st->img, pts, duration, 0)) js_throw(aom_codec_error_detail(&st->codec) ? aom_codec_error_detail(&st->codec) : "av1 encode failed");
  collect(st);
}

/*
 * Codes the canvas as the next frame, shown for `duration` ms (the alpha sequence's frame too,
 * when there is one); `seq_size` and `seq_data` give each coded frame.
 */
void seq_add(Seq *s, int duration) {
  const int d = duration > 0 ? duration : 1;
  to_yuv(s);
  encode(&s->color, s->pts, d);
  if (s->has_alpha) {
    to_alpha(s);
    encode(&s->alpha, s->pts, d);
  }
  s->pts += d;
}

static Stream *stream(Seq *s, int alpha) {
  if (alpha && !s->has_alpha) js_throw("av1 encode failed: no alpha sequence");
  return alpha ? &s->alpha : &s->color;
}

/* The latest frame's OBUs, their size and whether it is a key frame, of colour (0) or alpha (1). */
uint8_t *seq_data(Seq *s, int alpha) { return stream(s, alpha)->out; }
int seq_size(Seq *s, int alpha) { return (int)stream(s, alpha)->size; }
int seq_key(Seq *s, int alpha) { return stream(s, alpha)->key; }
/* Whether any frame so far had a pixel with alpha below 255. */
int seq_translucent(Seq *s) { return s->translucent; }

/* The sequence header OBU of colour (0) or alpha (1), for av1C's configOBUs; its length through `len`. */
uint8_t *seq_header(Seq *s, int alpha, int *len) {
  Stream *st = stream(s, alpha);
  aom_fixed_buf_t *h = aom_codec_get_global_headers(&st->codec);
  if (!h) js_throw("av1 encode failed: no sequence header");
  st->size = 0;
  append(st, h->buf, h->sz);
  free(h->buf);
  free(h);
  *len = (int)st->size;
  return st->out;
}

static void close_stream(Stream *st) {
  if (st->open) aom_codec_destroy(&st->codec);
  aom_img_free(st->img);
  free(st->out);
}

void seq_free(Seq *s) {
  if (!s) return;
  close_stream(&s->color);
  close_stream(&s->alpha);
  free(s->rgba);
  free(s);
}

/* libaom's longjmp, thrown to JS instead (codecs/aom-throw.h). */
#define AOM_THROW_MESSAGE "av1 encode failed: libaom internal error"
#include "aom-throw.h"
