/*
 * Streaming JPEG glue over libjpeg-turbo, for the worker's codec layer (src/codecs/jpeg.ts).
 *
 * Decoder: open (read the header) -> start at a DCT scale of 1/1, 1/2, 1/4 or 1/8 (libjpeg's
 * scale_num/scale_denom, ITU T.81 IDCT at reduced size) -> read a few RGBA rows at a time ->
 * close. Only the rows the caller asks for exist at once (plus, for progressive files, the
 * coefficient buffer libjpeg must keep until the last scan).
 * Encoder: start -> write a few RGBA rows at a time -> finish; the output grows in memory.
 *
 * Errors: libjpeg's error_exit must not return. It calls the imported `js_throw`, which throws
 * a JS exception through the WASM frames; the caller then drops the whole instance, so no state
 * left half-way by the unwind is ever used again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jpeglib.h"
#include "jerror.h"

__attribute__((import_module("env"), import_name("js_throw"))) void js_throw(const char *message);

static void fail(j_common_ptr cinfo) {
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  js_throw(message);
  abort();
}

/* A truncated file is an error, not a picture padded with grey: the chain tries another source. */
static void warn(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) fail(cinfo);
}

static void quiet(j_common_ptr cinfo) { (void)cinfo; }

typedef struct {
  struct jpeg_decompress_struct d;
  struct jpeg_error_mgr e;
  struct jpeg_progress_mgr p;
  int max_scans;
  uint8_t *cmyk; /* one CMYK row when the file is CMYK/YCCK, handed out as ink amounts */
} Dec;

/*
 * Refuses a file past `max_scans` scans, as libjpeg-turbo advises for untrusted input (djpeg
 * -maxscans, TJPARAM_SCANLIMIT): each scan is a pass over every block, and a progressive file
 * of a thousand tiny refinement scans costs seconds per megapixel.
 */
static void count_scans(j_common_ptr cinfo) {
  Dec *s = (Dec *)cinfo;
  if (s->d.input_scan_number > s->max_scans) {
    js_throw("too many scans");
    abort();
  }
}

static void errors(struct jpeg_error_mgr *e) {
  jpeg_std_error(e);
  e->error_exit = fail;
  e->emit_message = warn;
  e->output_message = quiet;
}

Dec *dec_open(const uint8_t *data, uint32_t len, int max_scans) {
  Dec *s = calloc(1, sizeof(Dec));
  s->d.err = &s->e;
  errors(&s->e);
  jpeg_create_decompress(&s->d);
  s->max_scans = max_scans;
  s->p.progress_monitor = count_scans;
  s->d.progress = &s->p;
  jpeg_mem_src(&s->d, data, len);
  jpeg_read_header(&s->d, TRUE);
  return s;
}

int dec_width(Dec *s) { return (int)s->d.image_width; }
int dec_height(Dec *s) { return (int)s->d.image_height; }
int dec_progressive(Dec *s) { return s->d.progressive_mode ? 1 : 0; }
int dec_components(Dec *s) { return s->d.num_components; }

/* Starts decoding at 1/denom scale (1, 2, 4 or 8); returns the scaled width. */
int dec_start(Dec *s, int denom) {
  s->d.scale_num = 1;
  s->d.scale_denom = (unsigned)denom;
  s->d.dct_method = JDCT_ISLOW;
  if (s->d.jpeg_color_space == JCS_CMYK || s->d.jpeg_color_space == JCS_YCCK) {
    s->d.out_color_space = JCS_CMYK;
  } else {
    s->d.out_color_space = JCS_EXT_RGBA;
  }
  jpeg_start_decompress(&s->d);
  if (s->d.out_color_space == JCS_CMYK) s->cmyk = malloc((size_t)s->d.output_width * 4);
  return (int)s->d.output_width;
}

int dec_out_height(Dec *s) { return (int)s->d.output_height; }
/* Whether dec_read gives CMYK ink amounts (a CMYK or YCCK file) rather than RGBA. */
int dec_cmyk(Dec *s) { return s->cmyk ? 1 : 0; }

/* Reads up to `max` rows of RGBA into `out`; returns how many were read (0 at the end). */
int dec_read(Dec *s, uint8_t *out, int max) {
  int n = 0;
  const int w = (int)s->d.output_width;
  while (n < max && s->d.output_scanline < s->d.output_height) {
    uint8_t *row = out + (size_t)n * w * 4;
    if (s->cmyk) {
      JSAMPROW r = s->cmyk;
      jpeg_read_scanlines(&s->d, &r, 1);
      /* Ink amounts, 0 = none, 255 = full (the CMYK an ICC profile takes): Adobe writes CMYK
         inverted (0 = full ink), plain CMYK is not. The caller turns them into RGB, through the
         file's profile or the plain formula (src/codecs/jpeg.ts). */
      const int inverted = s->d.saw_Adobe_marker;
      for (int x = 0; x < w * 4; x++) row[x] = inverted ? (uint8_t)(255 - s->cmyk[x]) : s->cmyk[x];
    } else {
      JSAMPROW r = row;
      jpeg_read_scanlines(&s->d, &r, 1);
    }
    n++;
  }
  return n;
}

void dec_close(Dec *s) {
  jpeg_destroy_decompress(&s->d);
  free(s->cmyk);
  free(s);
}

typedef struct {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  unsigned char *out;
  unsigned long size;
} Enc;

/*
 * Starts an encode of w x h RGBA. `mode` 0: one baseline scan with the standard Huffman tables,
 * the encoder holding only one MCU row (full-size outputs). 1: Huffman tables built for this
 * image (smaller files), which makes libjpeg keep every coefficient of the image until the end
 * (2 bytes per coefficient). 2: as 1, written as libjpeg's standard progressive scans
 * (jpeg_simple_progression), smaller still: the web-size encode.
 */
Enc *enc_start(int w, int h, int quality, int mode) {
  Enc *s = calloc(1, sizeof(Enc));
  s->c.err = &s->e;
  errors(&s->e);
  jpeg_create_compress(&s->c);
  jpeg_mem_dest(&s->c, &s->out, &s->size);
  s->c.image_width = (JDIMENSION)w;
  s->c.image_height = (JDIMENSION)h;
  s->c.input_components = 4;
  s->c.in_color_space = JCS_EXT_RGBA;
  jpeg_set_defaults(&s->c);
  jpeg_set_quality(&s->c, quality, TRUE);
  s->c.optimize_coding = mode > 0 ? TRUE : FALSE;
  if (mode == 2) jpeg_simple_progression(&s->c);
  s->c.dct_method = JDCT_ISLOW;
  jpeg_start_compress(&s->c, TRUE);
  return s;
}

void enc_write(Enc *s, uint8_t *rows, int n) {
  const size_t stride = (size_t)s->c.image_width * 4;
  for (int i = 0; i < n; i++) {
    JSAMPROW r = rows + (size_t)i * stride;
    jpeg_write_scanlines(&s->c, &r, 1);
  }
}

/* Finishes the file; returns its bytes (valid until enc_free), length from enc_size. */
uint8_t *enc_finish(Enc *s) {
  jpeg_finish_compress(&s->c);
  return s->out;
}

int enc_size(Enc *s) { return (int)s->size; }

void enc_free(Enc *s) {
  jpeg_destroy_compress(&s->c);
  free(s->out);
  free(s);
}
