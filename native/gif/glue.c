// Our glue over giflib (Debian bookworm 5.2.1, not kept here; native/build.sh fetches it): a
// GIF read one frame at a time, so only the current frame's colour indices are ever held
// (never every frame, as DGifSlurp would). The file's bytes stay in JS: giflib pulls them
// through `js_read`, so a 14 MB GIF is not copied into this memory. Compositing (disposal, transparency,
// offsets) is done by the caller on its own canvas (src/codecs/gif.ts).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gif_lib.h"

// Copies up to `n` of the file's next bytes into `buf`; returns how many (0 at the end).
extern int js_read(uint8_t *buf, int n);

typedef struct {
  GifFileType *gif;
  // The frame last read by gif_next.
  int left, top, width, height;
  uint8_t *indices;
  size_t capacity;
  // Which rows of the frame were decoded: a truncated frame keeps the rows it has (browsers
  // show them), and the rest are not drawn.
  uint8_t *rows;
  int rows_capacity;
  // One row of the frame as coded, before it is clipped to the logical screen.
  uint8_t *line;
  int line_capacity;
  uint8_t palette[256 * 4];
  int colors;
  // From the Graphic Control Extension before the frame (GIF89a section 23); reset per frame.
  int disposal, transparent, delay;
  // NETSCAPE2.0 application extension loop count; -1 when absent (play once).
  int loop;
  int error;
} Gif;

static int read_source(GifFileType *g, GifByteType *buf, int n) {
  (void)g;
  return js_read(buf, n);
}

Gif *gif_open(void) {
  Gif *h = (Gif *)calloc(1, sizeof(Gif));
  if (!h) return NULL;
  h->loop = -1;
  h->transparent = -1;
  int err = 0;
  h->gif = DGifOpen(NULL, read_source, &err);
  if (!h->gif) {
    free(h);
    return NULL;
  }
  return h;
}

int gif_width(Gif *h) { return h->gif->SWidth; }
int gif_height(Gif *h) { return h->gif->SHeight; }
int gif_background(Gif *h) { return h->gif->SColorMap ? h->gif->SBackGroundColor : -1; }
int gif_loop(Gif *h) { return h->loop; }
int gif_error(Gif *h) { return h->gif->Error; }

static void set_palette(Gif *h, const ColorMapObject *map) {
  if (!map) {
    // No local or global table (allowed by the spec): a grey ramp, as Pillow and libvips do.
    for (int i = 0; i < 256; i++) {
      h->palette[i * 4] = h->palette[i * 4 + 1] = h->palette[i * 4 + 2] = (uint8_t)i;
      h->palette[i * 4 + 3] = 255;
    }
    h->colors = 256;
    return;
  }
  int n = map->ColorCount > 256 ? 256 : map->ColorCount;
  memset(h->palette, 0, sizeof h->palette);
  for (int i = 0; i < n; i++) {
    h->palette[i * 4] = map->Colors[i].Red;
    h->palette[i * 4 + 1] = map->Colors[i].Green;
    h->palette[i * 4 + 2] = map->Colors[i].Blue;
    h->palette[i * 4 + 3] = 255;
  }
  // Indices beyond the table decode as opaque black (what browsers show).
  for (int i = n; i < 256; i++) h->palette[i * 4 + 3] = 255;
  h->colors = n;
}

// Reads records up to and including the next image. 1: a frame is ready; 2: a frame whose
// data ended early (the rows it has are marked in gif_frame_row_ok); 0: the trailer; -1: an
// error before any image data.
int gif_next(Gif *h) {
  GifFileType *g = h->gif;
  h->disposal = DISPOSAL_UNSPECIFIED;
  h->transparent = -1;
  h->delay = 0;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(g, &type) == GIF_ERROR) return -1;
    if (type == TERMINATE_RECORD_TYPE) return 0;
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType *ext = NULL;
      if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) return -1;
      int netscape = 0;
      if (ext && code == GRAPHICS_EXT_FUNC_CODE && ext[0] >= 4) {
        GraphicsControlBlock gcb;
        if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK) {
          h->disposal = gcb.DisposalMode;
          h->transparent = gcb.TransparentColor;
          h->delay = gcb.DelayTime;
        }
      } else if (ext && code == APPLICATION_EXT_FUNC_CODE && ext[0] == 11 && memcmp(ext + 1, "NETSCAPE2.0", 11) == 0) {
        netscape = 1;
      }
      while (ext) {
        if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) return -1;
        // The first sub-block of NETSCAPE2.0: 1, then the loop count (little-endian).
        if (netscape && ext && ext[0] >= 3 && ext[1] == 1) {
          h->loop = ext[2] | (ext[3] << 8);
          netscape = 0;
        }
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(g) == GIF_ERROR) return -1;
    GifImageDesc *d = &g->Image;
    set_palette(h, d->ColorMap ? d->ColorMap : g->SColorMap);
    // The frame clipped to the logical screen (GIF89a section 20: the image is positioned within
    // it; browsers draw nothing outside it). Only the clipped part is kept, so a 65535x14000
    // frame in a 64x64 screen costs 64x64 bytes here, not 917 MB; its rows are still decoded
    // (LZW is sequential), which the caller prices by the frame's own size.
    int sw = g->SWidth, sh = g->SHeight;
    int cw = d->Left >= sw ? 0 : (d->Width < sw - d->Left ? d->Width : sw - d->Left);
    int ch = d->Top >= sh ? 0 : (d->Height < sh - d->Top ? d->Height : sh - d->Top);
    h->left = d->Left;
    h->top = d->Top;
    h->width = cw;
    h->height = ch;
    size_t need = (size_t)cw * (size_t)ch;
    if (need > h->capacity) {
      uint8_t *grown = (uint8_t *)realloc(h->indices, need);
      if (!grown) return -1;
      h->indices = grown;
      h->capacity = need;
    }
    if (ch > h->rows_capacity) {
      uint8_t *grown = (uint8_t *)realloc(h->rows, (size_t)ch);
      if (!grown) return -1;
      h->rows = grown;
      h->rows_capacity = ch;
    }
    if (d->Width > h->line_capacity) {
      uint8_t *grown = (uint8_t *)realloc(h->line, (size_t)d->Width);
      if (!grown) return -1;
      h->line = grown;
      h->line_capacity = d->Width;
    }
    if (ch > 0) memset(h->rows, 0, (size_t)ch);
    int truncated = 0;
    // GIF89a appendix E: interlaced rows come in four passes.
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    int passes = d->Interlace ? 4 : 1;
    for (int p = 0; p < passes && !truncated; p++) {
      int y0 = d->Interlace ? start[p] : 0, dy = d->Interlace ? step[p] : 1;
      for (int y = y0; y < d->Height; y += dy) {
        if (DGifGetLine(g, h->line, d->Width) == GIF_ERROR) {
          truncated = 1;
          break;
        }
        if (y < ch) {
          memcpy(h->indices + (size_t)y * cw, h->line, (size_t)cw);
          h->rows[y] = 1;
        }
      }
    }
    GifFreeSavedImages(g);
    g->SavedImages = NULL;
    g->ImageCount = 0;
    // 2: a frame whose data ended early; it is the last.
    return truncated ? 2 : 1;
  }
}

int gif_frame_row_ok(Gif *h, int y) { return h->rows[y]; }
int gif_frame_left(Gif *h) { return h->left; }
int gif_frame_top(Gif *h) { return h->top; }
int gif_frame_width(Gif *h) { return h->width; }
int gif_frame_height(Gif *h) { return h->height; }
uint8_t *gif_frame_indices(Gif *h) { return h->indices; }
uint8_t *gif_frame_palette(Gif *h) { return h->palette; }
int gif_frame_disposal(Gif *h) { return h->disposal; }
int gif_frame_transparent(Gif *h) { return h->transparent; }
int gif_frame_delay(Gif *h) { return h->delay; }

void gif_close(Gif *h) {
  if (!h) return;
  int err = 0;
  DGifCloseFile(h->gif, &err);
  free(h->indices);
  free(h->rows);
  free(h->line);
  free(h);
}
