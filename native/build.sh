#!/usr/bin/env bash
# `npm run build:native`: rebuilds every .wasm under native/ from scratch, from Debian's source
# packages and our own glue (native/<name>/glue.c), with Debian's emscripten. Needs root (apt)
# or the packages already installed. The built .wasm files and each library's licence are
# committed; the libraries' sources never are.
#   native/jpeg/jpeg.wasm   libjpeg-turbo (Debian bookworm 2.1.5): scaled, row-streaming decode;
#                           row-streaming encode
#   native/webp/webp.wasm   libwebp (Debian bookworm 1.2.4): decode straight to a scaled size
#   native/webpanim/webpanim.wasm  libwebp + libwebpmux + libwebpdemux (1.2.4), SIMD: animated
#                           WebP encode (WebPAnimEncoder) and decode (WebPAnimDecoder); still
#                           WebP encoded from rows (a YUV picture filled band by band)
#   native/gif/gif.wasm     giflib (Debian bookworm 5.2.1): frame-by-frame decode from memory
#   native/av1seq/av1seq.wasm  libaom (Debian trixie 3.12.1), encoder only, SIMD: AVIF stills
#                           and grid tiles (all-intra, tune=iq), AV1 image sequences (animated AVIF)
#   native/av1dec/av1dec.wasm  libaom (bookworm 3.6.0), decoder only, SIMD, 8 to 12 bits: animated AVIF
#                           sources frame by frame, YCbCr to RGBA in our glue
#   native/resize/resize.wasm  our own code only, SIMD: the resampler's two inner loops
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${CODEC_BUILD_DIR:-$(mktemp -d /tmp/codec-build.XXXXXX)}"
# emcc's JS optimizer needs Debian's node modules when run with the system Node.
export NODE_PATH=/usr/share/nodejs

need_apt=()
command -v emcc >/dev/null || need_apt+=(emscripten)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v dpkg-source >/dev/null || need_apt+=(dpkg-dev)
command -v nasm >/dev/null || need_apt+=(nasm)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Source packages need a deb-src line for the mirror the machine already uses.
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  else
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >> /etc/apt/sources.list
  fi
  apt-get update -qq
fi

source_of() { # package -> unpacked source directory under $work
  (cd "$work" && [ -d "$1"-*/ ] 2>/dev/null || apt-get source -qq "$1" >/dev/null 2>&1)
  ls -d "$work/$1"-*/ | head -1
}

build_jpeg() {
  local src; src="$(source_of libjpeg-turbo)"
  mkdir -p "$src/build-wasm"
  (cd "$src/build-wasm" &&
    emcmake cmake .. -DWITH_SIMD=0 -DENABLE_SHARED=0 -DSIZE_T=4 -DWITH_TURBOJPEG=0 -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-O3 >/dev/null &&
    emmake make -j"$(nproc)" jpeg-static >/dev/null)
  # A standalone module (no emscripten JS glue): src/codecs/standalone.ts provides its few
  # imports. The initial memory is small so a thumbnail's decoder stays small.
  emcc -O3 -msimd128 "$here/jpeg/glue.c" -I"$src" -I"$src/build-wasm" "$src/build-wasm/libjpeg.a" \
    -o "$here/jpeg/jpeg.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_dec_open,_dec_width,_dec_height,_dec_progressive,_dec_components,_dec_start,_dec_out_height,_dec_cmyk,_dec_read,_dec_close,_enc_start,_enc_write,_enc_finish,_enc_size,_enc_free \
    2> >(grep -v 'undefined symbol: js_throw' >&2)
  cp "$src/LICENSE.md" "$here/jpeg/LICENSE.md"
  cp "$src/README.ijg" "$here/jpeg/README.ijg"
  echo "built native/jpeg/jpeg.wasm ($(stat -c %s "$here/jpeg/jpeg.wasm") bytes) from $(basename "$src")"
}

# libwebp's command-line tools are never built: only its libraries.
WEBP_NO_TOOLS=(-DWEBP_BUILD_ANIM_UTILS=OFF -DWEBP_BUILD_CWEBP=OFF -DWEBP_BUILD_DWEBP=OFF -DWEBP_BUILD_GIF2WEBP=OFF
  -DWEBP_BUILD_IMG2WEBP=OFF -DWEBP_BUILD_VWEBP=OFF -DWEBP_BUILD_WEBPINFO=OFF -DWEBP_BUILD_WEBPMUX=OFF -DWEBP_BUILD_EXTRAS=OFF)

build_webp() {
  local src; src="$(source_of libwebp)"
  mkdir -p "$src/build-wasm"
  (cd "$src/build-wasm" &&
    emcmake cmake .. "${WEBP_NO_TOOLS[@]}" -DWEBP_ENABLE_SIMD=OFF -DWEBP_USE_THREAD=OFF -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-O3 >/dev/null &&
    emmake make -j"$(nproc)" webpdecoder >/dev/null)
  emcc -O3 "$here/webp/glue.c" -I"$src" "$src/build-wasm/libwebpdecoder.a" \
    -o "$here/webp/webp.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_dec_open,_dec_width,_dec_height,_dec_has_animation,_dec_decode,_dec_pixels,_dec_stride,_dec_close
  cp "$src/COPYING" "$here/webp/COPYING"
  cp "$src/PATENTS" "$here/webp/PATENTS"
  echo "built native/webp/webp.wasm ($(stat -c %s "$here/webp/webp.wasm") bytes) from $(basename "$src")"
}

build_webpanim() {
  local src; src="$(source_of libwebp)"
  mkdir -p "$src/build-wasm-anim"
  # WASM SIMD (libwebp's SSE2 paths through emscripten's SSE headers): workerd runs it, and an
  # animation is many encodes.
  (cd "$src/build-wasm-anim" &&
    emcmake cmake .. "${WEBP_NO_TOOLS[@]}" -DWEBP_BUILD_LIBWEBPMUX=ON -DWEBP_ENABLE_SIMD=ON -DWEBP_USE_THREAD=OFF -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_FLAGS="-O3 -msimd128" >/dev/null &&
    emmake make -j"$(nproc)" webp webpdemux libwebpmux >/dev/null)
  local b="$src/build-wasm-anim"
  emcc -O3 -msimd128 "$here/webpanim/glue.c" -I"$src" "$b/libwebpmux.a" "$b/libwebpdemux.a" "$b/libwebp.a" \
    -o "$here/webpanim/webpanim.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_anim_enc_new,_anim_enc_canvas,_anim_enc_add,_anim_enc_finish,_anim_enc_data,_anim_enc_size,_anim_enc_error,_anim_enc_free,_anim_dec_new,_anim_dec_width,_anim_dec_height,_anim_dec_loop,_anim_dec_frames,_anim_dec_next,_anim_dec_pixels,_anim_dec_timestamp,_anim_dec_free,_rows_enc_new,_rows_enc_band,_rows_enc_write,_rows_enc_finish,_rows_enc_data,_rows_enc_size,_rows_enc_error,_rows_enc_free
  cp "$src/COPYING" "$here/webpanim/COPYING"
  cp "$src/PATENTS" "$here/webpanim/PATENTS"
  echo "built native/webpanim/webpanim.wasm ($(stat -c %s "$here/webpanim/webpanim.wasm") bytes) from $(basename "$src")"
}

build_gif() {
  local src; src="$(source_of giflib)"
  # giflib's decoder is five C files; no configure step is needed.
  emcc -O3 "$here/gif/glue.c" -I"$src" "$src/dgif_lib.c" "$src/gif_err.c" "$src/gifalloc.c" "$src/gif_hash.c" "$src/openbsd-reallocarray.c" \
    -o "$here/gif/gif.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_gif_open,_gif_width,_gif_height,_gif_background,_gif_loop,_gif_error,_gif_next,_gif_frame_left,_gif_frame_top,_gif_frame_width,_gif_frame_height,_gif_frame_indices,_gif_frame_palette,_gif_frame_disposal,_gif_frame_transparent,_gif_frame_delay,_gif_frame_row_ok,_gif_close \
    2> >(grep -v 'undefined symbol: js_read' >&2)
  cp "$src/COPYING" "$here/gif/COPYING"
  echo "built native/gif/gif.wasm ($(stat -c %s "$here/gif/gif.wasm") bytes) from $(basename "$src")"
}

aom_source() {
  # Debian's security update of aom (3.6.0-1+deb12u3) is listed but not on the mirror here;
  # deb12u2 carries the same upstream tarball.
  (cd "$work" && { ls -d aom-3.6*/ >/dev/null 2>&1 || apt-get source -qq aom >/dev/null 2>&1 || apt-get source -qq aom=3.6.0-1+deb12u2 >/dev/null 2>&1; } && ls -d "$work"/aom-3.6*/ | head -1)
}

aom_trixie_source() {
  # Debian trixie's aom 3.12.1 (all-intra tune=iq for stills). Its .dsc is not on the mirror,
  # the upstream .orig tarball is: downloaded and unpacked as is (no Debian patch touches
  # what is built here).
  if ! grep -rqs '^Suites:.*trixie\|^deb-src .* trixie ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/trixie-src.sources
    apt-get update -qq
  fi
  (cd "$work" && { ls -d aom-3.12*/ >/dev/null 2>&1 || { apt-get source --download-only -qq aom/trixie >/dev/null 2>&1 || true; tar xzf aom_3.12*.orig.tar.gz; }; } && ls -d "$work"/aom-3.12*/ | head -1)
}

# One libaom module: `aom_module NAME BUILD_DIR SIMD EXPORTS CMAKE_FLAGS...` builds libaom in
# BUILD_DIR with the flags every build shares (single-threaded, static dispatch) plus
# CMAKE_FLAGS, and links native/NAME/glue.c into native/NAME/NAME.wasm. SIMD=0: libaom's
# portable C only. SIMD=1: libaom's x86 SSE2-SSE4.1 intrinsics, which emscripten's SSE headers
# map to WASM SIMD (AVX2 and SSE4.2's CRC32 have no WASM mapping in emscripten 3.1.6). Its x86
# assembly (nasm) cannot become WASM: each .asm is assembled for real only to list the
# functions it defines (nm), native/aom-simd/noasm stands in for nasm in the build, and
# native/aom-simd/rtcd-noasm.mjs points libaom's dispatch headers from those functions to their
# C or intrinsics versions. One line of libaom is changed in the unpacked source: its x87
# precision control (inline x86 assembly) is left out under emscripten, where there is no x87.
# libaom's internal errors longjmp back to the API call; without emscripten's JS glue there is
# no longjmp (SUPPORT_LONGJMP=0), so the glue's longjmp throws to JS (native/aom-throw.h).
aom_module() {
  local name="$1" dir="$2" simd="$3" exports="$4"; shift 4
  local src; src="${AOM_SRC:-$(aom_source)}"
  local cflags="-O3 -sSUPPORT_LONGJMP=0" target=(-DAOM_TARGET_CPU=generic)
  mkdir -p "$src/$dir" "$here/$name"
  if [ "$simd" = 1 ]; then
    cflags="$cflags -msimd128"
    target=(-DAOM_TARGET_CPU=x86 -DAS_EXECUTABLE="$here/aom-simd/noasm" -DCMAKE_ASM_NASM_COMPILER="$here/aom-simd/noasm" -DPERL_EXECUTABLE="$here/aom-simd/rtcd-perl" -DENABLE_SSE4_2=0)
    sed -i 's/^#if \(AOM_\)\?ARCH_X86 || \(AOM_\)\?ARCH_X86_64$/#if (\1ARCH_X86 || \2ARCH_X86_64) \&\& !defined(__EMSCRIPTEN__)/' "$src/aom/src/aom_encoder.c"
  fi
  (cd "$src/$dir" &&
    emcmake cmake .. "${target[@]}" -DCONFIG_MULTITHREAD=0 -DCONFIG_RUNTIME_CPU_DETECT=0 \
      "$@" -DCONFIG_WEBM_IO=0 -DCONFIG_LIBYUV=0 \
      -DENABLE_DOCS=0 -DENABLE_EXAMPLES=0 -DENABLE_TESTS=0 -DENABLE_TESTDATA=0 -DENABLE_TOOLS=0 \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" >/dev/null)
  if [ "$simd" = 1 ]; then
    # Every function libaom's x86 assembly defines, as 32-bit ELF objects name them.
    export AOM_ASM_SYMBOLS="$src/$dir/asm-symbols.txt"
    local obj; obj="$(mktemp)"
    (cd "$src" && find aom_dsp av1 aom_ports aom_scale -name '*.asm' | sort | while read -r f; do
      nasm -f elf32 -I./ -I"$dir"/ -o "$obj" "$f" 2>/dev/null && nm -g --defined-only "$obj" | awk '{print $3}'
    done) | sort -u > "$AOM_ASM_SYMBOLS"
    rm -f "$obj"
    [ -s "$AOM_ASM_SYMBOLS" ] || { echo "no assembly symbols listed for $name" >&2; exit 1; }
    # Generated again by make, through the filter (native/aom-simd/rtcd-perl).
    rm -f "$src/$dir"/config/*_rtcd.h
  fi
  (cd "$src/$dir" && emmake make -j"$(nproc)" aom >/dev/null)
  emcc $cflags "$here/$name/glue.c" -I"$here" -I"$src" -I"$src/$dir" "$src/$dir/libaom.a" \
    -o "$here/$name/$name.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=2MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS="$exports" \
    2> >(grep -v 'undefined symbol: js_throw' >&2)
  # An unresolved libaom symbol would be a WASM import no one provides: refuse the build.
  node -e '
    const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
    const known = new Set(["env.memory", "env.js_throw", "env.emscripten_notify_memory_growth", "env.setTempRet0"]);
    const bad = WebAssembly.Module.imports(m).map((i) => i.module + "." + i.name).filter((n) => !known.has(n) && !n.startsWith("wasi_snapshot_preview1."));
    if (bad.length) { console.error("unresolved in " + process.argv[1] + ": " + bad.join(" ")); process.exit(1); }' "$here/$name/$name.wasm"
  cp "$src/LICENSE" "$here/$name/LICENSE"
  cp "$src/PATENTS" "$here/$name/PATENTS"
  echo "built native/$name/$name.wasm ($(stat -c %s "$here/$name/$name.wasm") bytes) from $(basename "$src")"
}

build_av1seq() {
  # Encoder only, 8-bit only, SIMD: stills (all-intra) and image sequences; trixie's 3.12.1.
  AOM_SRC="$(aom_trixie_source)" aom_module av1seq build-wasm-simd 1 _malloc,_free,_seq_new,_seq_canvas,_seq_add,_seq_data,_seq_size,_seq_key,_seq_translucent,_seq_header,_seq_free \
    -DCONFIG_AV1_DECODER=0 -DCONFIG_AV1_HIGHBITDEPTH=0
}

build_av1dec() {
  # Decoder only; high bit depth on (10- and 12-bit sequences), 8-bit streams still decoded in
  # 8-bit buffers (the glue's allow_lowbitdepth).
  aom_module av1dec build-wasm-dec-simd 1 _malloc,_free,_dec_new,_dec_buffer,_dec_decode,_dec_width,_dec_height,_dec_rgba,_dec_free \
    -DCONFIG_AV1_ENCODER=0 -DCONFIG_AV1_DECODER=1 -DCONFIG_AV1_HIGHBITDEPTH=1
}

build_resize() {
  # No library: the resampler's inner loops, one f32x4 per RGBA pixel.
  emcc -O3 -msimd128 "$here/resize/glue.c" \
    -o "$here/resize/resize.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=256KB -sTOTAL_STACK=64KB -sMAXIMUM_MEMORY=1GB \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_resize_hfilter,_resize_vfilter
  echo "built native/resize/resize.wasm ($(stat -c %s "$here/resize/resize.wasm") bytes)"
}

for codec in ${CODECS:-jpeg webp webpanim gif av1seq av1dec resize}; do "build_$codec"; done
