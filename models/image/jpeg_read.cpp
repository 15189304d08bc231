// JPEG input through libjpeg-turbo (8-bit baseline, extended, progressive, arithmetic), with its
// errors and warnings turned into sm::Error. It replaced stb_image, whose Debian version (2.27)
// writes past a 257-byte array when a Huffman table's counts add to more than 256 (issue 11
// item 3); libjpeg-turbo checks every table and is fuzzed continuously upstream.
#include <csetjmp>
#include <cstdio>
#include <vector>
// jpeglib.h needs size_t and FILE declared before it.
#include <jerror.h>
#include <jpeglib.h>

#include "models/image/image_decode.h"

namespace sm {

JpegFrame jpeg_frame_find(const std::string& what, const std::function<std::string(uint64_t, size_t)>& bytes) {
  auto fail = [&](const std::string& why) { image_fail(what, why); };
  if (bytes(0, 2) != "\xFF\xD8") fail("not a JPEG stream (no start-of-image marker)");
  uint64_t at = 2;
  for (int segments = 0; segments < 100000; ++segments) {
    std::string m = bytes(at, 4);
    if (m.size() < 2) fail("truncated JPEG (the file ends before the frame header)");
    if (uint8_t(m[0]) != 0xFF) fail("corrupt JPEG (no marker where one must be, at byte " + std::to_string(at) + ")");
    const int code = uint8_t(m[1]);
    if (code == 0xFF) {  // fill byte before a marker
      ++at;
      continue;
    }
    if ((code >= 0xD0 && code <= 0xD7) || code == 0x01) {  // markers without a length
      at += 2;
      continue;
    }
    if (code == 0xD9 || code == 0xDA) fail("corrupt JPEG (image data or end marker before any frame header)");
    if (m.size() < 4) fail("truncated JPEG (the file ends inside a marker segment)");
    const uint32_t len = uint32_t(uint8_t(m[2])) << 8 | uint8_t(m[3]);
    if (len < 2) fail("corrupt JPEG (marker segment of length " + std::to_string(len) + ")");
    const bool sof = (code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC) || code == 0xF7;
    if (sof) {
      std::string s = bytes(at + 4, 6);
      if (s.size() < 6 || len < 8) fail("truncated JPEG (incomplete frame header)");
      JpegFrame f;
      f.marker = code;
      f.precision = uint8_t(s[0]);
      f.height = int(uint32_t(uint8_t(s[1])) << 8 | uint8_t(s[2]));
      f.width = int(uint32_t(uint8_t(s[3])) << 8 | uint8_t(s[4]));
      f.components = uint8_t(s[5]);
      return f;
    }
    at += 2 + uint64_t(len);
  }
  image_fail(what, "corrupt JPEG (no frame header in the first 100000 marker segments)");
}

namespace {

// The frame header says what kind of JPEG this is; refuse the kinds we cannot decode in words a
// user can act on, before libjpeg says "Unsupported marker type 0xc3".
JpegFrame jpeg_frame_check(const std::string& path, FILE* f) {
  JpegFrame fr = jpeg_frame_find(path, [f](uint64_t at, size_t n) { return image_file_bytes(f, at, n); });
  const int m = fr.marker;
  if (m == 0xC3 || m == 0xCB)
    image_fail(path, "lossless JPEG is not supported as an image file (it is read inside DICOM); store the image as 16-bit PNG");
  if (m == 0xF7) image_fail(path, "JPEG-LS is not supported as an image file (it is read inside DICOM)");
  if ((m >= 0xC5 && m <= 0xC7) || (m >= 0xCD && m <= 0xCF)) image_fail(path, "hierarchical JPEG is not supported");
  if (fr.precision != 8)
    image_fail(path, std::to_string(fr.precision) + "-bit JPEG is not supported (only 8-bit); store the image as 16-bit PNG");
  if (fr.height == 0) image_fail(path, "JPEG without a height in its frame header (DNL marker) is not supported");
  if (fr.width == 0) image_fail(path, "corrupt JPEG (width 0 in the frame header)");
  if (fr.components != 1 && fr.components != 3 && fr.components != 4)
    image_fail(path, "corrupt JPEG (" + std::to_string(fr.components) + " colour components)");
  return fr;
}

struct JpegErr {
  jpeg_error_mgr mgr;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  int code = 0;
  char text[JMSG_LENGTH_MAX] = {};
};

void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  e->code = c->err->msg_code;
  c->err->format_message(c, e->text);
  std::longjmp(e->jump, 1);
}

// libjpeg only warns about damaged data and decodes on: missing bytes become grey, a truncated
// file gets a made-up end marker. From an untrusted file that is an error (level < 0 = warning;
// levels above 0 are trace messages).
void jpeg_on_message(j_common_ptr c, int level) {
  if (level < 0) jpeg_on_error(c);
}

// Decodes into out->data (sized by the caller) as grey levels. Returns false when libjpeg failed
// (e->text says why). No object with a destructor lives in this frame, so longjmp skips none.
bool jpeg_decode_raw(jpeg_decompress_struct* c, JpegErr* e, FILE* f, Image* out, std::vector<JSAMPLE>* row) {
  if (setjmp(e->jump)) return false;
  jpeg_create_decompress(c);
  std::rewind(f);
  jpeg_stdio_src(c, f);
  jpeg_read_header(c, TRUE);
  if (int(c->image_width) != out->width || int(c->image_height) != out->height) {
    std::snprintf(e->text, sizeof e->text, "frame headers disagree on the size");
    return false;
  }
  if (c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK) {
    std::snprintf(e->text, sizeof e->text, "CMYK JPEG is not supported");
    e->code = -1;
    return false;
  }
  c->out_color_space = JCS_GRAYSCALE;  // the luminance channel (Y) of YCbCr; computed from RGB
  jpeg_start_decompress(c);
  row->resize(size_t(c->output_width) * size_t(c->output_components));
  for (size_t y = 0; c->output_scanline < c->output_height; ++y) {
    JSAMPROW r = row->data();
    jpeg_read_scanlines(c, &r, 1);
    float* dst = out->data.data() + y * size_t(out->width);
    for (int x = 0; x < out->width; ++x) dst[x] = float((*row)[size_t(x)]);
  }
  jpeg_finish_decompress(c);  // reads up to the end marker; bytes after it are ignored
  return true;
}

struct JpegGuard {
  jpeg_decompress_struct* c;
  ~JpegGuard() { jpeg_destroy_decompress(c); }
};

}  // namespace

ImageInfo jpeg_header_read(const std::string& path) {
  FilePtr f = image_file_open(path, nullptr);
  JpegFrame fr = jpeg_frame_check(path, f.get());
  ImageInfo info;
  info.format = "jpeg";
  info.width = fr.width;
  info.height = fr.height;
  info.bits = 8;
  return info;
}

Image jpeg_decode(const std::string& path, const ImageReadOptions& options) {
  FilePtr f = image_file_open(path, nullptr);
  JpegFrame fr = jpeg_frame_check(path, f.get());
  image_pixels_check(path, fr.width, fr.height, options.max_pixels);
  Image img(fr.width, fr.height);
  std::vector<JSAMPLE> row;
  jpeg_decompress_struct c{};
  JpegErr e;
  c.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_on_error;
  e.mgr.emit_message = jpeg_on_message;
  JpegGuard guard{&c};
  if (!jpeg_decode_raw(&c, &e, f.get(), &img, &row)) {
    if (e.code == -1) image_fail(path, e.text);
    if (e.code == JWRN_JPEG_EOF) image_fail(path, "truncated JPEG (the file ends before the image data is complete)");
    if (e.code == JWRN_HIT_MARKER)
      image_fail(path, "corrupt or truncated JPEG (a marker interrupts the image data: " + std::string(e.text) + ")");
    image_fail(path, "corrupt JPEG (" + std::string(e.text) + ")");
  }
  img.bits = 8;
  img.format = "jpeg";
  return img;
}

}  // namespace sm
