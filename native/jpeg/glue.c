/*
 * Streaming JPEG glue over libjpeg-turbo, for the worker's codec layer (src/codecs/jpeg.ts).
 *
 * Decoder: open (read the header) -> start at a DCT scale of 1/1, 1/2, 1/4 or 1/8 (libjpeg's
 * scale_num/scale_denom, ITU T.81 IDCT at reduced size) -> read a few RGBA rows at a time ->
 * close. Only the rows the caller asks for exist at once (plus, for progressive files, the
 * coefficient buffer libjpeg must keep until the last scan, packed at 1/4 and 1/8: `Packed`).
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
#include <wasm_simd128.h>
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

/*
 * A compact store for the coefficients of a scaled decode of a multi-scan file.
 *
 * A progressive (or multi-scan) file is decoded into a coefficient array kept whole until the
 * last scan: 64 coefficients of 2 bytes per 8x8 block, 36 MiB for a 12 MP 4:2:0 photo at any
 * scale. Scaled down, the reduced inverse DCTs read few of them: at a component's scaled block
 * size 1 only the DC (jidctred.c jpeg_idct_1x1), at 2 the rows and columns 0, 1, 3, 5 and 7
 * (jpeg_idct_2x2, 25 coefficients). The entropy decoder still needs to know which of the other
 * coefficients are non-zero: a refinement scan reads a correction bit for each non-zero one
 * (T.81 G.1.2.3), so the bit stream is parsed right only with that history. So a block is kept
 * as the coefficients the IDCT reads plus one bit per other coefficient (non-zero or not):
 * 10 bytes instead of 128 at size 1, 58 at size 2. Measured on a 12 MP progressive 4:2:0
 * photo: the decoder's memory 9.1 MiB at 1/8 (luma at size 1, chroma at 2) and 24.0 at 1/4
 * (luma at 2) instead of 36.2; decoding took some 15-30% longer.
 *
 * It plugs into libjpeg through its memory manager's virtual block arrays (jpeglib.h `struct
 * jpeg_memory_mgr`, the coefficient controller's only way to its whole-image buffer): the
 * caller gets a window of full blocks, which is packed back into the store when the caller
 * moves on, as jmemmgr.c does with its backing store.
 */
#define MAX_PACKED 10 /* MAX_COMPONENTS */

typedef struct {
  JDIMENSION blocksperrow, numrows, maxaccess;
  int size;           /* the component's scaled block size: 1 or 2 */
  size_t record;      /* bytes per block in the store: 10 or 58 */
  uint64_t keptmask;  /* natural-order positions the IDCT reads */
  uint8_t *store;     /* numrows * blocksperrow records, and 16 bytes for whole-vector loads */
  JBLOCKARRAY window; /* maxaccess rows of full blocks */
  JDIMENSION first, loaded;
  int dirty;
} Packed;

/* The rows (and, in each, the columns) jpeg_idct_2x2 reads. */
static int idct2_reads(int i) { return i < 2 || i % 2; }

static size_t packed_row(Packed *p) { return (size_t)p->blocksperrow * p->record; }

/* One bit per coefficient of a block (bit k: natural position k is non-zero). */
static uint64_t nonzero(const JCOEF *c) {
  uint64_t nz = 0;
  for (int r = 0; r < 8; r++) nz |= (uint64_t)wasm_i16x8_bitmask(wasm_i16x8_ne(wasm_v128_load(c + 8 * r), wasm_i16x8_splat(0))) << (8 * r);
  return nz;
}

static void pack_rows(Packed *p) {
  for (JDIMENSION r = 0; r < p->loaded; r++) {
    uint8_t *rec = p->store + (size_t)(p->first + r) * packed_row(p);
    JBLOCKROW row = p->window[r];
    for (JDIMENSION b = 0; b < p->blocksperrow; b++, rec += p->record) {
      const JCOEF *c = row[b];
      const uint64_t nz = nonzero(c) & ~p->keptmask;
      memcpy(rec, &nz, 8);
      if (p->size == 1) {
        memcpy(rec + 8, c, sizeof(JCOEF));
        continue;
      }
      uint8_t *v = rec + 8;
      for (int k = 0; k < 8; k++) {
        if (!idct2_reads(k)) continue;
        /* Columns 0, 1, 3, 5, 7 of the row, 10 bytes. */
        const v128_t kept = wasm_i16x8_shuffle(wasm_v128_load(c + 8 * k), wasm_i16x8_splat(0), 0, 1, 3, 5, 7, 8, 8, 8);
        wasm_v128_store64_lane(v, kept, 0);
        wasm_v128_store16_lane(v + 8, kept, 4);
        v += 10;
      }
    }
  }
}

static void unpack_rows(Packed *p) {
  const v128_t lanebits = wasm_i16x8_make(1, 2, 4, 8, 16, 32, 64, 128);
  for (JDIMENSION r = 0; r < p->loaded; r++) {
    const uint8_t *rec = p->store + (size_t)(p->first + r) * packed_row(p);
    JBLOCKROW row = p->window[r];
    for (JDIMENSION b = 0; b < p->blocksperrow; b++, rec += p->record) {
      JCOEF *c = row[b];
      uint64_t nz;
      memcpy(&nz, rec, 8);
      const uint8_t *v = rec + 8;
      for (int k = 0; k < 8; k++) {
        /* 1 where a coefficient the IDCT does not read is non-zero: only the entropy decoder
           looks at them, and only at whether they are zero. */
        const v128_t bits = wasm_v128_and(wasm_i16x8_splat((int16_t)((nz >> (8 * k)) & 0xff)), lanebits);
        v128_t out = wasm_u16x8_shr(wasm_i16x8_ne(bits, wasm_i16x8_splat(0)), 15);
        if (p->size == 1) {
          if (k == 0) {
            JCOEF dc;
            memcpy(&dc, v, sizeof dc);
            out = wasm_i16x8_replace_lane(out, 0, dc);
          }
        } else if (idct2_reads(k)) {
          out = wasm_v128_or(out, wasm_i16x8_shuffle(wasm_v128_load(v), wasm_i16x8_splat(0), 0, 1, 8, 2, 8, 3, 8, 4));
          v += 10;
        }
        wasm_v128_store(c + 8 * k, out);
      }
    }
  }
}

typedef struct {
  struct jpeg_decompress_struct d;
  struct jpeg_error_mgr e;
  struct jpeg_progress_mgr p;
  int max_scans;
  uint8_t *cmyk; /* one CMYK row when the file is CMYK/YCCK, handed out as ink amounts */
  Packed packed[MAX_PACKED];
  int requested; /* coefficient arrays asked for so far, one per component in order */
  jvirt_barray_ptr (*request_virt_barray)(j_common_ptr, int, boolean, JDIMENSION, JDIMENSION, JDIMENSION);
  JBLOCKARRAY (*access_virt_barray)(j_common_ptr, jvirt_barray_ptr, JDIMENSION, JDIMENSION, boolean);
} Dec;


static Packed *packed_of(Dec *s, jvirt_barray_ptr ptr) {
  for (int i = 0; i < MAX_PACKED; i++)
    if ((void *)&s->packed[i] == (void *)ptr) return &s->packed[i];
  return NULL;
}

/*
 * jdcoefct.c asks for one array per component, in component order, once the output scale is
 * known (jinit_master_decompress): a component whose reduced IDCT reads at most 25
 * coefficients gets a packed array, any other libjpeg's own.
 */
static jvirt_barray_ptr request_packed(j_common_ptr cinfo, int pool_id, boolean pre_zero, JDIMENSION blocksperrow, JDIMENSION numrows, JDIMENSION maxaccess) {
  Dec *s = (Dec *)cinfo;
  const int ci = s->requested++;
  const int size = ci < s->d.num_components && ci < MAX_PACKED ? s->d.comp_info[ci].DCT_scaled_size : DCTSIZE;
  if (size > 2 || pool_id != JPOOL_IMAGE || !pre_zero) return s->request_virt_barray(cinfo, pool_id, pre_zero, blocksperrow, numrows, maxaccess);
  Packed *p = &s->packed[ci];
  memset(p, 0, sizeof *p);
  p->size = size;
  for (int k = 0; k < 64; k++)
    if (size == 1 ? k == 0 : idct2_reads(k / 8) && idct2_reads(k % 8)) p->keptmask |= (uint64_t)1 << k;
  p->blocksperrow = blocksperrow;
  p->numrows = numrows;
  p->maxaccess = maxaccess < numrows ? maxaccess : numrows;
  p->record = 8 + sizeof(JCOEF) * (size == 1 ? 1 : 25);
  /* Pool allocations: freed with the image pool (jpeg_finish/abort/destroy_decompress). */
  p->store = (*cinfo->mem->alloc_large)(cinfo, JPOOL_IMAGE, (size_t)numrows * packed_row(p) + 16);
  memset(p->store, 0, (size_t)numrows * packed_row(p) + 16);
  p->window = (*cinfo->mem->alloc_barray)(cinfo, JPOOL_IMAGE, blocksperrow, p->maxaccess);
  return (jvirt_barray_ptr)(void *)p;
}

/* jmemmgr.c's access_virt_barray, with the store packed: the window is loaded forward. */
static JBLOCKARRAY access_packed(j_common_ptr cinfo, jvirt_barray_ptr ptr, JDIMENSION start_row, JDIMENSION num_rows, boolean writable) {
  Dec *s = (Dec *)cinfo;
  Packed *p = packed_of(s, ptr);
  if (!p) return s->access_virt_barray(cinfo, ptr, start_row, num_rows, writable);
  const JDIMENSION end = start_row + num_rows;
  if (end > p->numrows || num_rows > p->maxaccess) ERREXIT(cinfo, JERR_BAD_VIRTUAL_ACCESS);
  if (p->loaded == 0 || start_row < p->first || end > p->first + p->loaded) {
    if (p->dirty) pack_rows(p);
    p->dirty = 0;
    p->first = start_row > p->first || p->loaded == 0 ? start_row : (end > p->maxaccess ? end - p->maxaccess : 0);
    if (p->first + p->maxaccess > p->numrows) p->first = p->numrows - p->maxaccess;
    p->loaded = p->maxaccess;
    unpack_rows(p);
  }
  if (writable) p->dirty = 1;
  return p->window + (start_row - p->first);
}

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
  if (denom >= 4) {
    s->request_virt_barray = s->d.mem->request_virt_barray;
    s->access_virt_barray = s->d.mem->access_virt_barray;
    s->d.mem->request_virt_barray = request_packed;
    s->d.mem->access_virt_barray = access_packed;
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
/* The quantisation tables mozjpeg uses by default (its `quant_tbl_master_idx` 3: N. Robidoux's
 * tables as published with ImageMagick), in natural order, one table for luma and chroma alike.
 * With them our libjpeg-turbo stands in for the quality reference, a mozjpeg JPEG at
 * QUALITY_LEVEL, when the worker measures what that reference would score on an image
 * (src/produce/perceptual.ts). */
static const unsigned int REFERENCE_TABLE[64] = {
  16, 16, 16, 18, 25, 37, 56, 85,    16, 17, 20, 27, 34, 40, 53, 75,
  16, 20, 24, 31, 43, 62, 91, 135,   18, 27, 31, 40, 53, 74, 106, 156,
  25, 34, 43, 53, 69, 94, 131, 189,  37, 40, 62, 74, 94, 124, 169, 238,
  56, 53, 91, 106, 131, 169, 226, 311, 85, 75, 135, 156, 189, 238, 311, 418,
};

/* `mode`: 0 one scan, standard Huffman tables; 1 one optimised scan; 2 progressive; plus 4 for
 * the reference's quantisation tables instead of the standard's (ITU-T T.81 Annex K). */
Enc *enc_start(int w, int h, int quality, int mode) {
  const int reference = mode & 4;
  mode &= 3;
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
  if (reference) {
    const int scale = jpeg_quality_scaling(quality);
    jpeg_add_quant_table(&s->c, 0, REFERENCE_TABLE, scale, TRUE);
    jpeg_add_quant_table(&s->c, 1, REFERENCE_TABLE, scale, TRUE);
  }
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
