// Hostile and unusual image files (issue 11 items 3-6 and 11): every crafted input is built here
// from a valid file we encode ourselves; each must give one error line that names the file and
// the cause in plain words, or decode correctly when the file is valid.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "tensor/check.h"
#include "test_support.h"
#include "models/image/image_io.h"

namespace fs = std::filesystem;
using namespace sm;

namespace {

const test::TempDir& scratch() {
  static test::TempDir dir("image_hardening");
  return dir;
}

std::string bytes_put(const std::string& name, const std::string& bytes) {
  std::string p = scratch().file(name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string bytes_get(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

Image gradient(int w, int h) {
  Image img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img.at(x, y) = float((x * 7 + y * 13) % 256);
  return img;
}

void append_fn(void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(n)); }

// A valid baseline JPEG (stb_image_write: SOI, APP0?, DQT, SOF0, DHT, SOS ... EOI).
std::string jpeg_valid(int w = 64, int h = 48) {
  Image img = gradient(w, h);
  std::vector<uint8_t> px(img.data.begin(), img.data.end());
  std::string out;
  REQUIRE(stbi_write_jpg_to_func(append_fn, &out, w, h, 1, px.data(), 90));
  return out;
}

std::string png_valid(int w = 40, int h = 30, int bits = 8) {
  std::string p = scratch().file("valid.png");
  image_write_png(p, gradient(w, h), {bits, 0.f, 255.f});
  return bytes_get(p);
}

// The message of the sm::Error that `f` throws ("" when it throws none).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// image_read and image_info both refuse `path` with one line "<path>: ...<reason>...".
void refused(const std::string& path, const std::string& reason) {
  for (int info = 0; info < 2; ++info) {
    std::string msg = info ? error_of([&] { image_info(path); }) : error_of([&] { image_read(path); });
    INFO((info ? "image_info " : "image_read ") << path << " -> '" << msg << "'");
    CHECK(msg.rfind(path + ": ", 0) == 0);
    CHECK(msg.find(reason) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

uint32_t crc32_png(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

void be32_put(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + size_t(i)] = char(v >> (24 - 8 * i));
}

// Rewrites a PNG's IHDR fields (width, height, depth, colour type) with a correct CRC, so that the
// field itself is what a reader must refuse.
std::string png_ihdr_patch(std::string png, uint32_t w, uint32_t h, int depth, int ctype) {
  be32_put(png, 16, w);
  be32_put(png, 20, h);
  png[24] = char(depth);
  png[25] = char(ctype);
  be32_put(png, 29, crc32_png(png.substr(12, 17)));
  return png;
}

}  // namespace

TEST_CASE("JPEG whose Huffman table counts add to more than 256: clear error") {
  // stb_image 2.27 writes past its 257-entry size array on such a table (ASan: heap overflow).
  std::string dht = "\xFF\xC4";
  const int n = 300;  // 255 codes of length 8 and 45 of length 9
  dht += char((2 + 1 + 16 + n) >> 8), dht += char((2 + 1 + 16 + n) & 0xFF);
  dht += '\0';  // DC table 0
  for (int i = 0; i < 16; ++i) dht += char(i == 7 ? 255 : i == 8 ? 45 : 0);
  dht += std::string(n, '\0');
  std::string j = jpeg_valid();
  std::string bad = j.substr(0, 2) + dht + j.substr(2);
  refused(bytes_put("huff.jpg", bad), "Huffman");
}

TEST_CASE("image_info decodes: truncated or damaged files are errors, not valid headers") {
  std::string j = jpeg_valid(200, 150);
  refused(bytes_put("cut200.jpg", j.substr(0, 200)), "JPEG");
  // cut in half with an end-of-image marker appended: the end marker does not make it whole
  refused(bytes_put("half_eoi.jpg", j.substr(0, j.size() / 2) + "\xFF\xD9"), "JPEG");

  // a PNG whose IDAT holds garbage (correct length and CRC): the compressed pixels are damaged
  std::string png = png_valid(64, 48);
  size_t idat = png.find("IDAT");
  REQUIRE(idat != std::string::npos);
  uint32_t len = uint32_t(uint8_t(png[idat - 4])) << 24 | uint32_t(uint8_t(png[idat - 3])) << 16 |
                 uint32_t(uint8_t(png[idat - 2])) << 8 | uint8_t(png[idat - 1]);
  for (uint32_t i = 0; i < len; ++i) png[idat + 4 + i] = char((i * 2654435761u) >> 11);
  be32_put(png, idat + 4 + len, crc32_png(png.substr(idat, 4 + len)));
  refused(bytes_put("garbage_idat.png", png), "pixel data");
}

TEST_CASE("valid files that were refused: JPEG with trailing bytes, top-down BMP") {
  std::string j = jpeg_valid();
  std::string p = bytes_put("trailing.jpg", j + std::string(5000, 'x'));
  Image a = image_read(p);
  CHECK(a.width == 64);
  CHECK(image_info(p).height == 48);

  Image img = gradient(30, 20);
  std::vector<uint8_t> px(img.data.begin(), img.data.end());
  std::string bmp;
  REQUIRE(stbi_write_bmp_to_func(append_fn, &bmp, 30, 20, 1, px.data()));
  // bottom-up -> top-down: negative height, rows in reading order
  uint32_t off = uint8_t(bmp[10]) | uint8_t(bmp[11]) << 8;
  size_t row = (30 * 3 + 3) / 4 * 4;
  std::string td = bmp.substr(0, off);
  for (int y = 19; y >= 0; --y) td += bmp.substr(off + size_t(y) * row, row);
  int32_t neg = -20;
  for (int i = 0; i < 4; ++i) td[22 + size_t(i)] = char(uint32_t(neg) >> (8 * i));
  std::string tp = bytes_put("topdown.bmp", td);
  Image b = image_read(tp);
  CHECK(b.width == 30);
  CHECK(b.height == 20);
  CHECK(b.data == img.data);
  CHECK(image_info(tp).height == 20);
}

TEST_CASE("messages say what is wrong: directory, 12-bit and lossless JPEG") {
  fs::create_directories(scratch().path() / "a_dir.png");
  refused(scratch().file("a_dir.png"), "directory");

  std::string j = jpeg_valid();
  size_t sof = j.find("\xFF\xC0");
  REQUIRE(sof != std::string::npos);
  std::string j12 = j;
  j12[sof + 1] = char(0xC1), j12[sof + 4] = 12;  // extended sequential, 12-bit samples
  refused(bytes_put("twelve.jpg", j12), "12-bit");
  std::string jl = j;
  jl[sof + 1] = char(0xC3);  // lossless (process 14)
  refused(bytes_put("lossless.jpg", jl), "lossless");
}

TEST_CASE("PNG and PGM headers are validated whatever the size") {
  std::string png = png_valid();
  refused(bytes_put("depth7.png", png_ihdr_patch(png, 40, 30, 7, 0)), "bit depth 7");
  refused(bytes_put("ctype9.png", png_ihdr_patch(png, 40, 30, 8, 9)), "colour type 9");
  refused(bytes_put("wide.png", png_ihdr_patch(png, 0xFFFFFFFFu, 30, 8, 0)), "width 4294967295");
  // 16-bit, 40000 x 30000 (over 2^30 pixels): refused as too large, never reported as 8-bit
  std::string big = bytes_put("big16.png", png_ihdr_patch(png, 40000, 30000, 16, 0));
  refused(big, "too large");

  refused(bytes_put("wide.pgm", "P5\n100000000000000000000 1\n255\n" + std::string(64, 'a')), "width");
  refused(bytes_put("zero.pgm", "P5\n0 1\n255\n" + std::string(64, 'a')), "width");
  refused(bytes_put("maxval.pgm", "P5\n2 2\n70000\n" + std::string(64, 'a')), "maximum value");
}

#ifdef SPINEMARK_DICOM
namespace {
const std::string kLut = std::string(SPINEMARK_SHARED_DIR) + "/data/dicom/CR-ModalitySequenceLUT.dcm";

// The shared JPEG-lossless sample with `value` written over the bytes after `element` (a tag and
// explicit VR header of `header` bytes); "" when the sample is absent.
std::string dicom_patch(const std::string& element, size_t header, const std::string& value) {
  std::string b = bytes_get(kLut);
  size_t at = b.find(element);
  REQUIRE(at != std::string::npos);
  b.replace(at + header, value.size(), value);
  return b;
}
}  // namespace

TEST_CASE("DICOM: sizes that disagree with the JPEG frame, unsupported transfer syntax, spacing") {
  if (!fs::exists(kLut)) {
    MESSAGE("skipped: " << kLut << " not found");
    return;
  }
  // Rows 1576 -> 1600 and Columns 1976 -> 2000: bigger than the compressed frame
  refused(bytes_put("rows.dcm", dicom_patch(std::string("\x28\x00\x10\x00US\x02\x00", 8), 8, "\x40\x06")), "Rows");
  refused(bytes_put("cols.dcm", dicom_patch(std::string("\x28\x00\x11\x00US\x02\x00", 8), 8, "\xD0\x07")), "Columns");
  // JPEG 2000 (same UID length as the file's JPEG lossless): no decoder, and says so
  refused(bytes_put("j2k.dcm", dicom_patch("1.2.840.10008.1.2.4.70", 0, "1.2.840.10008.1.2.4.90")), "transfer syntax");

  // Pixel Spacing "1e999\1e9": not finite, so not used; Imager Pixel Spacing (0.15) is
  std::string ps = bytes_put("ps.dcm", dicom_patch(std::string("\x28\x00\x30\x00", 4), 8, "1e999\\1e9 "));
  ImageInfo info = image_info(ps);
  REQUIRE(info.pixel_spacing_mm);
  CHECK((*info.pixel_spacing_mm)[0] == doctest::Approx(0.15));
  CHECK((*info.pixel_spacing_mm)[1] == doctest::Approx(0.15));
  std::string both = dicom_patch(std::string("\x28\x00\x30\x00", 4), 8, "1e999\\1e9 ");
  size_t at = both.find(std::string("\x18\x00\x64\x11", 4));
  both.replace(at + 8, 10, "1e-300\\0.1");
  CHECK(!image_info(bytes_put("ps2.dcm", both)).pixel_spacing_mm);
}

TEST_CASE("DICOM: a damaged JPEG-lossless stream is an error for image_info too") {
  if (!fs::exists(kLut)) {
    MESSAGE("skipped: " << kLut << " not found");
    return;
  }
  std::string b = bytes_get(kLut);
  size_t px = b.find(std::string("\xE0\x7F\x10\x00", 4));
  REQUIRE(px != std::string::npos);
  // overwrite 20 kB in the middle of the compressed stream
  size_t mid = px + (b.size() - px) / 2;
  for (size_t i = 0; i < 20000; ++i) b[mid + i] = char((i * 2654435761u) >> 9);
  refused(bytes_put("damaged.dcm", b), "DICOM");
}
#endif

TEST_CASE("image_info header-only: reads the header bytes, never the whole file") {
  std::string png = png_valid();
  std::string big = bytes_put("big16h.png", png_ihdr_patch(png, 40000, 30000, 16, 0));
  ImageInfo info = image_info(big, ImageCheck::header);
  CHECK(info.bits == 16);  // was reported as 8-bit above 2^30 pixels
  CHECK(info.width == 40000);
  CHECK(info.height == 30000);
  std::string wide = bytes_put("wideh.png", png_ihdr_patch(png, 0xFFFFFFFFu, 30, 8, 0));
  CHECK(error_of([&] { image_info(wide, ImageCheck::header); }).find("width 4294967295") != std::string::npos);

  // blind to the pixels by design: a JPEG cut at 200 bytes still has its frame header
  std::string j = jpeg_valid(200, 150);
  std::string cut = bytes_put("cut200h.jpg", j.substr(0, 200));
  CHECK(image_info(cut, ImageCheck::header).width == 200);

  // a 3 GB (sparse) file: the header-only check reads 33 bytes; the full check streams the file
  // and stops at the first damaged chunk instead of loading 3 GB first
  std::string sparse = bytes_put("sparse.png", png.substr(0, 33));
  fs::resize_file(sparse, uint64_t(3) << 30);
  CHECK(image_info(sparse, ImageCheck::header).width == 40);
  refused(sparse, "corrupt PNG");
  fs::remove(sparse);
}
