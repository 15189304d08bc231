// PNG input through libpng (8- and 16-bit; grey, palette, RGB, with or without alpha; interlaced),
// with libpng's errors turned into sm::Error. It replaced stb_image (issue 11 items 3, 5): libpng
// is fuzzed continuously upstream, and we validate IHDR ourselves so that a header is checked the
// same way whatever the image size, and image_info can read it without decoding anything.
#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "models/image/image_decode.h"

namespace sm {
namespace {

uint32_t be32(const std::string& b, size_t at) {
  return uint32_t(uint8_t(b[at])) << 24 | uint32_t(uint8_t(b[at + 1])) << 16 | uint32_t(uint8_t(b[at + 2])) << 8 |
         uint32_t(uint8_t(b[at + 3]));
}

struct PngHeader {
  uint32_t width = 0, height = 0;
  int depth = 0, colour = 0;
};

// The PNG signature and IHDR (the first 33 bytes), checked against the PNG specification §11.2.2.
PngHeader png_ihdr_check(const std::string& path, FILE* f) {
  const std::string b = image_file_bytes(f, 0, 33);
  if (b.size() < 33) image_fail(path, "truncated PNG (the file ends inside its header)");
  if (be32(b, 8) != 13 || b.compare(12, 4, "IHDR") != 0) image_fail(path, "corrupt PNG (no IHDR chunk after the signature)");
  const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(b.data() + 12), 17));
  if (crc != be32(b, 29)) image_fail(path, "corrupt PNG (the header's checksum does not match: the file is damaged)");
  PngHeader h;
  h.width = be32(b, 16);
  h.height = be32(b, 20);
  h.depth = uint8_t(b[24]);
  h.colour = uint8_t(b[25]);
  const uint32_t max = 0x7FFFFFFFu;  // PNG's limit on either dimension
  if (h.width == 0 || h.width > max) image_fail(path, "invalid PNG header: width " + std::to_string(h.width) + " (PNG allows 1..2147483647)");
  if (h.height == 0 || h.height > max) image_fail(path, "invalid PNG header: height " + std::to_string(h.height) + " (PNG allows 1..2147483647)");
  const int d = h.depth;
  bool ok_depth = false;
  switch (h.colour) {
    case 0: ok_depth = d == 1 || d == 2 || d == 4 || d == 8 || d == 16; break;  // grey
    case 3: ok_depth = d == 1 || d == 2 || d == 4 || d == 8; break;             // palette
    case 2: case 4: case 6: ok_depth = d == 8 || d == 16; break;                // RGB, grey+alpha, RGBA
    default: image_fail(path, "invalid PNG header: colour type " + std::to_string(h.colour) + " (PNG defines 0, 2, 3, 4, 6)");
  }
  if (!ok_depth)
    image_fail(path, "invalid PNG header: bit depth " + std::to_string(d) + " with colour type " + std::to_string(h.colour));
  if (b[26] != 0 || b[27] != 0) image_fail(path, "invalid PNG header: unknown compression or filter method");
  if (uint8_t(b[28]) > 1) image_fail(path, "invalid PNG header: unknown interlace method " + std::to_string(uint8_t(b[28])));
  return h;
}

struct PngState {
  std::jmp_buf jump;
  FILE* f = nullptr;
  bool eof = false;
  char text[200] = {};
};

void png_on_error(png_structp p, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(p));
  std::snprintf(s->text, sizeof s->text, "%s", msg);
  std::longjmp(s->jump, 1);
}
void png_on_warning(png_structp, png_const_charp) {}  // ancillary-chunk trouble: the pixels are fine

void png_on_read(png_structp p, png_bytep out, size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(p));
  if (std::fread(out, 1, n, s->f) != n) {
    s->eof = true;
    png_error(p, "end of file");
  }
}

// Buffers live in the caller's frame: longjmp must skip no destructor.
struct PngWork {
  std::vector<png_byte> rows;   // one row, or the whole image when interlaced
  std::vector<png_bytep> ptrs;
};

// Decodes into out->data (sized by the caller) as grey levels, 16-bit samples as 0..65535.
bool png_decode_raw(png_structp p, png_infop info, PngState* s, Image* out, PngWork* w) {
  if (setjmp(s->jump)) return false;
  png_set_read_fn(p, s, png_on_read);
  png_set_user_limits(p, 0x7FFFFFFF, 0x7FFFFFFF);  // our max_pixels is the limit, checked before
  png_read_info(p, info);
  const int colour = png_get_color_type(p, info), depth = png_get_bit_depth(p, info);
  if (colour == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
  if (colour == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(p);
  png_set_strip_alpha(p);
  if (depth == 16) png_set_swap(p);  // native little-endian uint16 (x86, ARM)
  const int passes = png_set_interlace_handling(p);
  png_read_update_info(p, info);
  const size_t channels = png_get_channels(p, info), rowbytes = png_get_rowbytes(p, info);
  const size_t W = size_t(out->width), H = size_t(out->height);
  const bool whole = passes > 1;
  w->rows.resize(rowbytes * (whole ? H : 1));
  w->ptrs.resize(whole ? H : 1);
  for (size_t y = 0; y < w->ptrs.size(); ++y) w->ptrs[y] = w->rows.data() + y * rowbytes;
  auto convert = [&](const png_byte* r, size_t y) {
    float* dst = out->data.data() + y * W;
    for (size_t x = 0; x < W; ++x) {
      uint32_t v[3];
      for (size_t k = 0; k < channels; ++k) {
        size_t i = x * channels + k;
        if (depth == 16) {
          uint16_t u;
          std::memcpy(&u, r + 2 * i, 2);
          v[k] = u;
        } else {
          v[k] = r[i];
        }
      }
      dst[x] = float(channels >= 3 ? image_luma(v[0], v[1], v[2]) : v[0]);
    }
  };
  if (whole) {
    png_read_image(p, w->ptrs.data());
    for (size_t y = 0; y < H; ++y) convert(w->ptrs[y], y);
  } else {
    for (size_t y = 0; y < H; ++y) {
      png_read_row(p, w->ptrs[0], nullptr);
      convert(w->ptrs[0], y);
    }
  }
  png_read_end(p, nullptr);  // checks the rest of the data up to IEND
  return true;
}

// libpng's message in words that say what is wrong with the file.
std::string png_reason(const PngState& s) {
  const std::string t = s.text;
  if (s.eof) return "truncated PNG (the file ends before the image data is complete)";
  if (t.find("CRC") != std::string::npos) return "corrupt PNG (a checksum does not match: the file is damaged; libpng: " + t + ")";
  if (t.find("IDAT") != std::string::npos || t.find("image data") != std::string::npos)
    return "corrupt PNG (the compressed pixel data is damaged or incomplete; libpng: " + t + ")";
  return "corrupt PNG (libpng: " + t + ")";
}

struct PngGuard {
  png_structp p = nullptr;
  png_infop info = nullptr;
  ~PngGuard() { png_destroy_read_struct(&p, info ? &info : nullptr, nullptr); }
};

}  // namespace

ImageInfo png_header_read(const std::string& path) {
  FilePtr f = image_file_open(path, nullptr);
  PngHeader h = png_ihdr_check(path, f.get());
  ImageInfo info;
  info.format = "png";
  info.width = int(h.width);
  info.height = int(h.height);
  info.bits = h.depth == 16 ? 16 : 8;  // 1-, 2- and 4-bit grey are read as 8-bit
  return info;
}

Image png_decode(const std::string& path, const ImageReadOptions& options) {
  FilePtr f = image_file_open(path, nullptr);
  PngHeader h = png_ihdr_check(path, f.get());
  image_pixels_check(path, h.width, h.height, options.max_pixels);
  Image img(int(h.width), int(h.height));
  PngState s;
  s.f = f.get();
  std::rewind(f.get());
  PngWork work;
  PngGuard g;
  g.p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_on_error, png_on_warning);
  if (g.p) g.info = png_create_info_struct(g.p);
  if (!g.p || !g.info) image_fail(path, "libpng could not start (out of memory)");
  if (!png_decode_raw(g.p, g.info, &s, &img, &work)) image_fail(path, png_reason(s));
  img.bits = h.depth == 16 ? 16 : 8;
  img.format = "png";
  return img;
}

}  // namespace sm
