// Image input/output (issue 3): PNG 8/16-bit round trips, JPEG/BMP/PGM decoding, every bad-input
// case naming the file, and DICOM (method.md §7.3) from ../shared/data/dicom and Debian's gdcm docs.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <zlib.h>

#include "models/image/image_io.h"
#include "models/image/overlay.h"
#include "tensor/check.h"

namespace fs = std::filesystem;
using namespace sm;

namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("spinemark_test_image_io_" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

void bytes_write(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

std::string bytes_read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Checks that reading `p` throws sm::Error whose message starts with the path and holds `reason`.
void read_expect_error(const fs::path& p, const std::string& reason, const ImageReadOptions& o = {}) {
  std::string msg;
  try {
    image_read(p.string(), o);
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("file " << p << " message: " << msg);
  CHECK(msg.rfind(p.string() + ": ", 0) == 0);
  CHECK(msg.find(reason) != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
}

Image gradient(int w, int h, float top) {
  Image img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img.at(x, y) = std::round(top * float((x * 7 + y * 13) % 101) / 100.f);
  return img;
}

[[maybe_unused]] double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= double(a.size()), mb /= double(b.size());
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

const std::string dicom_dir = std::string(SPINEMARK_SHARED_DIR) + "/data/dicom/";

}  // namespace

TEST_CASE("PNG 8-bit and 16-bit round trip exactly") {
  for (int bits : {8, 16}) {
    float top = bits == 16 ? 65535.f : 255.f;
    Image img = gradient(37, 23, top);
    fs::path p = temp_dir() / ("rt" + std::to_string(bits) + ".png");
    image_write_png(p.string(), img, {bits, 0.f, top});
    Image back = image_read(p.string());
    CHECK(back.width == 37);
    CHECK(back.height == 23);
    CHECK(back.bits == bits);
    CHECK(back.format == "png");
    CHECK(back.data == img.data);
    ImageInfo info = image_info(p.string());
    CHECK(info.format == "png");
    CHECK(info.bits == bits);
    CHECK(info.width == 37);
    CHECK(!info.pixel_spacing_mm);
  }
}

TEST_CASE("JPEG, BMP and PGM (8/16-bit) decode") {
  Image img = gradient(32, 16, 255.f);
  std::vector<uint8_t> px(img.data.begin(), img.data.end());
  fs::path jpg = temp_dir() / "a.jpg", bmp = temp_dir() / "a.bmp";
  REQUIRE(stbi_write_jpg(jpg.string().c_str(), 32, 16, 1, px.data(), 95));
  REQUIRE(stbi_write_bmp(bmp.string().c_str(), 32, 16, 1, px.data()));
  Image j = image_read(jpg.string());
  CHECK(j.format == "jpeg");
  CHECK(j.width == 32);
  double err = 0;
  for (size_t i = 0; i < px.size(); ++i) err += std::abs(j.data[i] - img.data[i]);
  CHECK(err / double(px.size()) < 12.0);  // lossy, but close
  Image b = image_read(bmp.string());
  CHECK(b.format == "bmp");
  CHECK(b.data == img.data);

  std::string pgm8 = "P5\n32 16\n255\n" + std::string(px.begin(), px.end());
  bytes_write(temp_dir() / "a8.pgm", pgm8);
  Image g8 = image_read((temp_dir() / "a8.pgm").string());
  CHECK(g8.format == "pgm");
  CHECK(g8.bits == 8);
  CHECK(g8.data == img.data);

  std::string pgm16 = "P5\n32 16\n65535\n";
  for (float v : img.data) {  // big-endian samples, scaled to 16 bits
    uint16_t s = uint16_t(v * 257.f);
    pgm16 += char(s >> 8), pgm16 += char(s & 0xFF);
  }
  bytes_write(temp_dir() / "a16.pgm", pgm16);
  Image g16 = image_read((temp_dir() / "a16.pgm").string());
  CHECK(g16.bits == 16);
  CHECK(g16.at(5, 3) == img.at(5, 3) * 257.f);
  CHECK(image_info((temp_dir() / "a16.pgm").string()).bits == 16);
}

TEST_CASE("bad input: one error line naming the file and the reason") {
  Image img = gradient(40, 30, 255.f);
  fs::path png = temp_dir() / "ok.png";
  image_write_png(png.string(), img, {8, 0.f, 255.f});
  std::string good = bytes_read(png);

  bytes_write(temp_dir() / "empty.png", "");
  read_expect_error(temp_dir() / "empty.png", "empty file");
  bytes_write(temp_dir() / "trunc.png", good.substr(0, good.size() / 2));
  read_expect_error(temp_dir() / "trunc.png", "png");
  bytes_write(temp_dir() / "header_only.png", good.substr(0, 20));
  read_expect_error(temp_dir() / "header_only.png", "png");
  std::string garbage(1000, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char((i * 2654435761u) >> 13);
  bytes_write(temp_dir() / "garbage.png", garbage);
  read_expect_error(temp_dir() / "garbage.png", "unsupported");
  bytes_write(temp_dir() / "corrupt.png", good.substr(0, 8) + garbage);
  read_expect_error(temp_dir() / "corrupt.png", "png");
  bytes_write(temp_dir() / "x.gif", "GIF89a" + garbage);
  read_expect_error(temp_dir() / "x.gif", "unsupported format: GIF");
  bytes_write(temp_dir() / "ascii.pgm", "P2\n2 2\n255\n0 1 2 3\n");
  read_expect_error(temp_dir() / "ascii.pgm", "unsupported");
  read_expect_error(temp_dir() / "does_not_exist.png", "cannot open");

  std::vector<uint8_t> px(img.data.begin(), img.data.end());
  fs::path jpg = temp_dir() / "t.jpg", bmp = temp_dir() / "t.bmp";
  REQUIRE(stbi_write_jpg(jpg.string().c_str(), 40, 30, 1, px.data(), 90));
  REQUIRE(stbi_write_bmp(bmp.string().c_str(), 40, 30, 1, px.data()));
  std::string j = bytes_read(jpg), b = bytes_read(bmp);
  bytes_write(temp_dir() / "trunc.jpg", j.substr(0, j.size() * 2 / 3));
  read_expect_error(temp_dir() / "trunc.jpg", "truncated JPEG");
  bytes_write(temp_dir() / "trunc.bmp", b.substr(0, b.size() - 100));
  read_expect_error(temp_dir() / "trunc.bmp", "truncated BMP");
  bytes_write(temp_dir() / "trunc.pgm", "P5\n40 30\n255\n" + std::string(100, 'a'));
  read_expect_error(temp_dir() / "trunc.pgm", "pgm");

  ImageReadOptions small;
  small.max_pixels = 40 * 30 - 1;
  read_expect_error(png, "too large", small);
  // a header that claims 60000 x 60000 pixels: refused from the header, nothing allocated
  std::string huge = good;
  for (int i = 0; i < 2; ++i) {
    huge[size_t(16 + 4 * i)] = 0, huge[size_t(17 + 4 * i)] = 0;
    huge[size_t(18 + 4 * i)] = char(0xEA), huge[size_t(19 + 4 * i)] = char(0x60);
  }
  // with its checksum updated: a damaged header is refused before its size is looked at
  const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(huge.data() + 12), 17));
  for (int i = 0; i < 4; ++i) huge[size_t(29 + i)] = char(crc >> (24 - 8 * i));
  bytes_write(temp_dir() / "huge.png", huge);
  read_expect_error(temp_dir() / "huge.png", "too large");
}

TEST_CASE("overlay canvas draws and writes a readable RGB PNG") {
  Image img = gradient(20, 10, 255.f);
  RgbImage c = overlay_from_gray(img);
  overlay_point_draw(c, 5, 5, 1, {255, 0, 0});
  overlay_line_draw(c, 0, 0, 19, 9, {0, 255, 0});
  overlay_cross_draw(c, 15, 3, 2, {0, 0, 255});
  CHECK(c.rgb[(5 * 20 + 5) * 3] == 255);
  CHECK(c.rgb[(5 * 20 + 5) * 3 + 1] == 0);
  CHECK(c.rgb[(9 * 20 + 19) * 3 + 1] == 255);
  fs::path p = temp_dir() / "overlay.png";
  overlay_write_png(p.string(), c);
  Image back = image_read(p.string());  // read as luminance
  CHECK(back.width == 20);
  CHECK(back.at(5, 5) == doctest::Approx(255 * 77 / 256).epsilon(0.02));
}

#ifdef SPINEMARK_DICOM
TEST_CASE("DICOM: MONOCHROME1, 10-bit, no meta header, VOI window") {
  std::string path = dicom_dir + "CR-MONO1-10-chest";
  if (!fs::exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  ImageInfo info = image_info(path);
  CHECK(info.format == "dicom");
  CHECK(info.width == 440);
  CHECK(info.height == 440);
  CHECK(info.bits == 10);
  Image img = image_read(path);
  CHECK(img.bits == 10);
  REQUIRE(img.data.size() == 440u * 440u);
  // Implicit little endian, pixel data last: the stored 10-bit values.
  std::string bytes = bytes_read(path);
  const size_t n = 440 * 440, at = bytes.size() - 2 * n;
  std::vector<double> stored(n), got(n), expect(n);
  double max_diff = 0;
  for (size_t i = 0; i < n; ++i) {
    stored[i] = double((uint8_t(bytes[at + 2 * i]) | uint8_t(bytes[at + 2 * i + 1]) << 8) & 0x3FF);
    got[i] = img.data[i];
    // DICOM linear VOI window (C = 550, W = 1024) to 0..1023, then MONOCHROME1 inverted.
    double c = 550 - 0.5, w = 1024 - 1, y;
    if (stored[i] <= c - w / 2) y = 0;
    else if (stored[i] > c + w / 2) y = 1023;
    else y = ((stored[i] - c) / w + 0.5) * 1023;
    expect[i] = 1023 - y;
    max_diff = std::max(max_diff, std::abs(expect[i] - got[i]));
  }
  CHECK(correlation(stored, got) < -0.99);  // inverted polarity
  CHECK(max_diff <= 1.5);
  ImageReadOptions raw;
  raw.dicom_apply_voi = false;
  Image unwindowed = image_read(path, raw);
  CHECK(unwindowed.data != img.data);
  ImageReadOptions small;
  small.max_pixels = 1000;
  read_expect_error(path, "too large", small);
}

TEST_CASE("DICOM: JPEG lossless, modality LUT, pixel spacing") {
  std::string path = dicom_dir + "CR-ModalitySequenceLUT.dcm";
  if (!fs::exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  ImageInfo info = image_info(path);
  CHECK(info.format == "dicom");
  CHECK(info.width == 1976);
  CHECK(info.height == 1576);
  REQUIRE(info.pixel_spacing_mm);
  CHECK((*info.pixel_spacing_mm)[0] == doctest::Approx(0.15));
  CHECK((*info.pixel_spacing_mm)[1] == doctest::Approx(0.15));
  Image img = image_read(path);
  REQUIRE(img.data.size() == 1976u * 1576u);
  CHECK(img.pixel_spacing_mm);
  float lo = *std::min_element(img.data.begin(), img.data.end());
  float hi = *std::max_element(img.data.begin(), img.data.end());
  MESSAGE("CR-ModalitySequenceLUT range " << lo << ".." << hi);
  CHECK(hi > lo + 100);
  CHECK(hi <= 1023);
  // The modality LUT (1024 entries, only 857 distinct values, e.g. LUT[500] = 535) merges levels:
  // measured 592 distinct output levels with it, 703 when DCMTK is told to ignore it.
  std::vector<float> levels = img.data;
  std::sort(levels.begin(), levels.end());
  size_t distinct = size_t(std::unique(levels.begin(), levels.end()) - levels.begin());
  MESSAGE("distinct output levels " << distinct);
  CHECK(distinct < 650);
  // Truncating the JPEG-lossless stream must give an error, not a crash.
  std::string bytes = bytes_read(path);
  fs::path cut = temp_dir() / "cut.dcm";
  bytes_write(cut, bytes.substr(0, bytes.size() / 2));
  read_expect_error(cut, "DICOM");
}

TEST_CASE("DICOM: Debian's gdcm example (JPEG lossless, 8-bit)") {
  std::string path = "/usr/share/doc/libgdcm3.0/examples/00191113.dcm";
  if (!fs::exists(path)) {
    MESSAGE("skipped: " << path << " not found (package libgdcm3.0)");
    return;
  }
  ImageInfo info = image_info(path);
  CHECK(info.width == 512);
  CHECK(info.bits == 8);
  Image img = image_read(path);
  CHECK(img.data.size() == 512u * 512u);
  CHECK(*std::max_element(img.data.begin(), img.data.end()) > 100.f);
}
#else
TEST_CASE("DICOM without DCMTK: a clear error") {
  std::string path = dicom_dir + "CR-MONO1-10-chest";
  if (!fs::exists(path)) return;
  read_expect_error(path, "without DICOM support");
}
#endif

TEST_CASE("cleanup") { fs::remove_all(temp_dir()); }
