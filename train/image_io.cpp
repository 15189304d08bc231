// Image input through stb_image (PNG 8/16-bit, JPEG, BMP, PGM) and format sniffing; DICOM is in
// dicom_io.cpp, PNG writing in png_write.cpp. Follows issue 3 and method.md §2.1.
// Debian's libstb already holds the stb implementations; we compile them only on request.
#ifdef SPINEMARK_STB_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#endif
#include "train/image_io.h"

#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "tensor/check.h"

namespace sm {

void image_fail(const std::string& path, const std::string& reason) { throw Error(path + ": " + reason); }

namespace {

// Whole file into memory; errors name the file. Image files are small next to their pixels.
std::string file_read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) image_fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  std::ostringstream os;
  os << f.rdbuf();
  if (f.bad()) image_fail(path, "read error");
  return os.str();
}

std::string file_read_head(const std::string& path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  if (!f) image_fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  std::string s(n, '\0');
  f.read(&s[0], std::streamsize(n));
  s.resize(size_t(f.gcount()));
  return s;
}

uint32_t le32(const std::string& b, size_t at) {
  return uint32_t(uint8_t(b[at])) | uint32_t(uint8_t(b[at + 1])) << 8 | uint32_t(uint8_t(b[at + 2])) << 16 |
         uint32_t(uint8_t(b[at + 3])) << 24;
}

// stb_image fills missing bytes of truncated BMP and JPEG files with zeros instead of failing,
// so we check their length ourselves.
void stb_check_complete(const std::string& path, const std::string& fmt, const std::string& bytes, int w, int h) {
  if (fmt == "jpeg") {
    // A complete JPEG ends with the EOI marker FF D9 (some writers append a few bytes after it).
    size_t from = bytes.size() > 4096 ? bytes.size() - 4096 : 0;
    if (bytes.find("\xFF\xD9", from) == std::string::npos) image_fail(path, "truncated JPEG (no end-of-image marker)");
  } else if (fmt == "pgm") {
    // Binary PNM header: magic, width, height, maxval (with # comments), one whitespace, samples.
    size_t at = 2;
    long v[3] = {0, 0, 0};
    for (long& x : v) {
      while (at < bytes.size() && (std::isspace(uint8_t(bytes[at])) || bytes[at] == '#'))
        if (bytes[at] == '#') at = bytes.find('\n', at) == std::string::npos ? bytes.size() : bytes.find('\n', at);
        else ++at;
      while (at < bytes.size() && std::isdigit(uint8_t(bytes[at]))) x = std::min(x * 10 + (bytes[at++] - '0'), 1L << 40);
    }
    uint64_t need = uint64_t(at + 1) + uint64_t(w) * uint64_t(h) * (bytes[1] == '6' ? 3u : 1u) * (v[2] > 255 ? 2u : 1u);
    if (uint64_t(bytes.size()) < need)
      image_fail(path, "truncated PGM (" + std::to_string(bytes.size()) + " bytes, needs " + std::to_string(need) + ")");
  } else if (fmt == "bmp" && bytes.size() >= 34) {
    uint32_t offset = le32(bytes, 10), compression = le32(bytes, 30);
    int bpp = uint8_t(bytes[28]) | uint8_t(bytes[29]) << 8;
    if (compression == 0 && bpp > 0) {
      uint64_t row = (uint64_t(w) * uint64_t(bpp) + 31) / 32 * 4;  // rows padded to 4 bytes
      if (uint64_t(bytes.size()) < uint64_t(offset) + row * uint64_t(h))
        image_fail(path, "truncated BMP (" + std::to_string(bytes.size()) + " bytes, pixel data needs " +
                             std::to_string(uint64_t(offset) + row * uint64_t(h)) + ")");
    }
  }
}

int stb_bits(const std::string& bytes) {
  return stbi_is_16_bit_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size())) ? 16 : 8;
}

uint32_t be32(const std::string& b, size_t at) {
  return uint32_t(uint8_t(b[at])) << 24 | uint32_t(uint8_t(b[at + 1])) << 16 | uint32_t(uint8_t(b[at + 2])) << 8 |
         uint32_t(uint8_t(b[at + 3]));
}

ImageInfo stb_info(const std::string& path, const std::string& fmt, const std::string& bytes) {
  int w = 0, h = 0, comp = 0;
  // stb refuses PNG headers over 2^30 pixels as "unknown image type"; read IHDR ourselves so that
  // such a file gets the same "too large" message as any other (IHDR: width, height at 16, 20).
  if (fmt == "png" && bytes.size() >= 24 && bytes.compare(12, 4, "IHDR") == 0) {
    ImageInfo info;
    info.format = fmt;
    info.width = int(std::min<uint32_t>(be32(bytes, 16), INT32_MAX));
    info.height = int(std::min<uint32_t>(be32(bytes, 20), INT32_MAX));
    if (int64_t(info.width) * info.height > (int64_t(1) << 30)) return info;  // refused by the caller
  }
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()), &w, &h, &comp))
    image_fail(path, "corrupt or unsupported " + fmt + " header (" + stbi_failure_reason() + ")");
  if (w <= 0 || h <= 0) image_fail(path, "invalid size " + std::to_string(w) + "x" + std::to_string(h));
  ImageInfo info;
  info.format = fmt;
  info.width = w;
  info.height = h;
  info.bits = stb_bits(bytes);
  return info;
}

void pixels_check_limit(const std::string& path, int64_t w, int64_t h, int64_t max_pixels) {
  if (w * h > max_pixels)
    image_fail(path, "image too large: " + std::to_string(w) + "x" + std::to_string(h) + " = " +
                         std::to_string(w * h) + " pixels, limit " + std::to_string(max_pixels));
}

Image stb_read(const std::string& path, const std::string& fmt, const ImageReadOptions& options) {
  std::string bytes = file_read_bytes(path);
  if (bytes.empty()) image_fail(path, "empty file");
  if (bytes.size() > size_t(INT32_MAX)) image_fail(path, "file larger than 2 GiB");
  ImageInfo info = stb_info(path, fmt, bytes);
  pixels_check_limit(path, info.width, info.height, options.max_pixels);  // before allocating
  stb_check_complete(path, fmt, bytes, info.width, info.height);
  const auto* mem = reinterpret_cast<const stbi_uc*>(bytes.data());
  int w = 0, h = 0, comp = 0;
  Image img;
  if (info.bits == 16) {
    std::unique_ptr<stbi_us, void (*)(void*)> px(stbi_load_16_from_memory(mem, int(bytes.size()), &w, &h, &comp, 1),
                                                  stbi_image_free);
    if (!px) image_fail(path, "corrupt " + fmt + " (" + stbi_failure_reason() + ")");
    img = Image(w, h);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(px.get()[i]);
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(mem, int(bytes.size()), &w, &h, &comp, 1),
                                                  stbi_image_free);
    if (!px) image_fail(path, "corrupt " + fmt + " (" + stbi_failure_reason() + ")");
    img = Image(w, h);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(px.get()[i]);
  }
  img.bits = info.bits;
  img.format = fmt;
  return img;
}

}  // namespace

std::string image_format_sniff(const std::string& head, const std::string& path) {
  auto starts = [&](const char* magic, size_t n) { return head.size() >= n && std::memcmp(head.data(), magic, n) == 0; };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "png";
  if (starts("\xFF\xD8\xFF", 3)) return "jpeg";
  if (starts("BM", 2) && head.size() >= 26) return "bmp";
  if (starts("P5", 2) || starts("P6", 2)) return "pgm";
  if (head.size() >= 132 && std::memcmp(head.data() + 128, "DICM", 4) == 0) return "dicom";
  // DICOM without the 128-byte preamble and meta header (old ACR-NEMA style files): the data
  // set starts directly with a little-endian tag of group 0x0008 (or 0x0002 / 0x0000).
  if (head.size() >= 8 && head[1] == 0 && (head[0] == 0x08 || head[0] == 0x02 || head[0] == 0x00) &&
      (head[3] == 0 || head[3] == 0x10))
    return "dicom";
  (void)path;
  return "";
}

namespace {
std::string format_sniff_file(const std::string& path) {
  std::string head = file_read_head(path, 256);
  if (head.empty()) image_fail(path, "empty file");
  std::string fmt = image_format_sniff(head, path);
  if (!fmt.empty()) return fmt;
  if (head.size() >= 2 && (head.compare(0, 2, "P2") == 0 || head.compare(0, 2, "P1") == 0 || head.compare(0, 2, "P3") == 0))
    image_fail(path, "unsupported format: ASCII PNM (only binary P5/P6 PGM/PPM are read)");
  if (head.compare(0, 3, "GIF") == 0) image_fail(path, "unsupported format: GIF");
  if (head.size() >= 4 && (std::memcmp(head.data(), "II*\0", 4) == 0 || std::memcmp(head.data(), "MM\0*", 4) == 0))
    image_fail(path, "unsupported format: TIFF");
  image_fail(path, "unsupported or unrecognised format (expected PNG, JPEG, BMP, PGM or DICOM)");
}
}  // namespace

Image image_read(const std::string& path, const ImageReadOptions& options) {
  std::string fmt = format_sniff_file(path);
  if (fmt == "dicom") return dicom_read(path, options);
  return stb_read(path, fmt, options);
}

ImageInfo image_info(const std::string& path) {
  std::string fmt = format_sniff_file(path);
  if (fmt == "dicom") return dicom_info(path);
  std::string bytes = file_read_bytes(path);
  if (bytes.size() > size_t(INT32_MAX)) image_fail(path, "file larger than 2 GiB");
  return stb_info(path, fmt, bytes);
}

}  // namespace sm
