// Image input: format sniffing, the file checks every reader shares, and the dispatch to the
// decoders of image_decode.h. Follows issue 3, issue 11 (items 3-6, 11) and method.md §2.1.
#include "models/image/image_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "models/image/image_decode.h"
#include "tensor/check.h"

namespace sm {

void image_fail(const std::string& path, const std::string& reason) { throw Error(path + ": " + reason); }

FilePtr image_file_open(const std::string& path, uint64_t* size) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) image_fail(path, "is a directory, not an image file");
  if (fs::exists(st) && !fs::is_regular_file(st)) image_fail(path, "not a regular file (device, pipe or socket)");
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) image_fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  const uintmax_t n = fs::file_size(path, ec);
  if (ec) image_fail(path, "cannot read its size (" + ec.message() + ")");
  if (n == 0) image_fail(path, "empty file");
  if (size) *size = uint64_t(n);
  return f;
}

std::string image_file_bytes(FILE* f, uint64_t offset, size_t n) {
  std::string s(n, '\0');
  if (std::fseek(f, long(offset), SEEK_SET) != 0) return "";
  s.resize(std::fread(&s[0], 1, n, f));
  return s;
}

void image_pixels_check(const std::string& path, int64_t w, int64_t h, int64_t max_pixels) {
  if (w * h > max_pixels)
    image_fail(path, "image too large: " + std::to_string(w) + "x" + std::to_string(h) + " = " +
                         std::to_string(w * h) + " pixels, limit " + std::to_string(max_pixels));
}

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
  FilePtr f = image_file_open(path, nullptr);
  std::string head = image_file_bytes(f.get(), 0, 256);
  std::string fmt = image_format_sniff(head, path);
  if (!fmt.empty()) return fmt;
  if (head.size() >= 2 && (head.compare(0, 2, "P2") == 0 || head.compare(0, 2, "P1") == 0 || head.compare(0, 2, "P3") == 0))
    image_fail(path, "unsupported format: ASCII PNM (only binary P5/P6 PGM/PPM are read)");
  if (head.compare(0, 3, "GIF") == 0) image_fail(path, "unsupported format: GIF");
  if (head.size() >= 4 && (std::memcmp(head.data(), "II*\0", 4) == 0 || std::memcmp(head.data(), "MM\0*", 4) == 0))
    image_fail(path, "unsupported format: TIFF");
  image_fail(path, "unsupported or unrecognised format (expected PNG, JPEG, BMP, PGM or DICOM)");
}

ImageInfo header_read(const std::string& path, const std::string& fmt) {
  if (fmt == "dicom") return dicom_info(path);
  if (fmt == "png") return png_header_read(path);
  if (fmt == "jpeg") return jpeg_header_read(path);
  if (fmt == "pgm") return pnm_header_read(path);
  return bmp_header_read(path);
}

}  // namespace

Image image_read(const std::string& path, const ImageReadOptions& options) {
  const std::string fmt = format_sniff_file(path);
  try {
    if (fmt == "dicom") return dicom_read(path, options);
    if (fmt == "png") return png_decode(path, options);
    if (fmt == "jpeg") return jpeg_decode(path, options);
    if (fmt == "pgm") return pnm_decode(path, options);
    return bmp_decode(path, options);
  } catch (const std::bad_alloc&) {
    image_fail(path, "not enough memory to decode it");
  }
}

ImageInfo image_info(const std::string& path, ImageCheck check) {
  const std::string fmt = format_sniff_file(path);
  ImageInfo info = header_read(path, fmt);
  // The header alone says nothing about the pixels: a file cut short or with damaged compressed
  // data has a perfect header. Decoding is the only check that image_read will succeed.
  if (check == ImageCheck::pixels) image_read(path);
  return info;
}

}  // namespace sm
