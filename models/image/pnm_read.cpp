// Binary PGM (P5) and PPM (P6) input, 8- or 16-bit (Netpbm format specification). Read by hand:
// the format is a short text header and raw samples, and a reader of our own checks every number
// instead of letting a width of 1e20 wrap around (issue 11 item 5).
#include <cctype>
#include <vector>

#include "models/image/image_decode.h"

namespace sm {
namespace {

struct PnmHeader {
  int width = 0, height = 0, maxval = 0, channels = 1;
  uint64_t data_at = 0;  // offset of the first sample
  int bytes_per_sample() const { return maxval > 255 ? 2 : 1; }
};

constexpr size_t kHeaderMax = 4096;  // magic, three numbers and comments; more is not a PNM header

// Parses "P5|P6 <ws> width <ws> height <ws> maxval <one ws>", '#' comments running to line end.
PnmHeader pnm_header_parse(const std::string& path, FILE* f, uint64_t file_size) {
  const std::string b = image_file_bytes(f, 0, kHeaderMax);
  PnmHeader h;
  h.channels = b[1] == '6' ? 3 : 1;
  size_t at = 2;
  const char* names[3] = {"width", "height", "maximum value"};
  int64_t v[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) {
    while (at < b.size() && (std::isspace(uint8_t(b[at])) || b[at] == '#')) {
      if (b[at] == '#')
        while (at < b.size() && b[at] != '\n') ++at;
      else
        ++at;
    }
    if (at >= b.size()) image_fail(path, "truncated or oversized PGM header (no " + std::string(names[k]) + ")");
    if (!std::isdigit(uint8_t(b[at]))) image_fail(path, "corrupt PGM header (" + std::string(names[k]) + " is not a number)");
    std::string digits;
    while (at < b.size() && std::isdigit(uint8_t(b[at]))) digits += b[at++];
    const size_t nz = digits.find_first_not_of('0');
    const std::string num = nz == std::string::npos ? "0" : digits.substr(nz);
    const int64_t limit = k == 2 ? 65535 : 0x7FFFFFFF;
    if (num.size() > 10 || std::stoll(num) > limit || std::stoll(num) == 0)
      image_fail(path, "invalid PGM header: " + std::string(names[k]) + " " + num + " (allowed 1.." + std::to_string(limit) + ")");
    v[k] = std::stoll(num);
  }
  if (at >= b.size() || !std::isspace(uint8_t(b[at]))) image_fail(path, "corrupt PGM header (no whitespace before the samples)");
  h.width = int(v[0]);
  h.height = int(v[1]);
  h.maxval = int(v[2]);
  h.data_at = at + 1;
  const uint64_t need = h.data_at + uint64_t(h.width) * uint64_t(h.height) * uint64_t(h.channels) * uint64_t(h.bytes_per_sample());
  if (file_size < need)
    image_fail(path, "truncated PGM (" + std::to_string(file_size) + " bytes, the header's size needs " + std::to_string(need) + ")");
  return h;
}

ImageInfo pnm_info(const PnmHeader& h) {
  ImageInfo info;
  info.format = "pgm";
  info.width = h.width;
  info.height = h.height;
  info.bits = h.maxval > 255 ? 16 : 8;
  return info;
}

}  // namespace

ImageInfo pnm_header_read(const std::string& path) {
  uint64_t size = 0;
  FilePtr f = image_file_open(path, &size);
  return pnm_info(pnm_header_parse(path, f.get(), size));
}

Image pnm_decode(const std::string& path, const ImageReadOptions& options) {
  uint64_t size = 0;
  FilePtr f = image_file_open(path, &size);
  const PnmHeader h = pnm_header_parse(path, f.get(), size);
  image_pixels_check(path, h.width, h.height, options.max_pixels);
  Image img(h.width, h.height);
  const size_t bps = size_t(h.bytes_per_sample()), per_row = size_t(h.width) * size_t(h.channels) * bps;
  std::vector<uint8_t> row(per_row);
  std::fseek(f.get(), long(h.data_at), SEEK_SET);
  for (int y = 0; y < h.height; ++y) {
    if (std::fread(row.data(), 1, per_row, f.get()) != per_row) image_fail(path, "truncated PGM (read error)");
    float* dst = img.data.data() + size_t(y) * size_t(h.width);
    for (int x = 0; x < h.width; ++x) {
      uint32_t s[3] = {0, 0, 0};
      for (int c = 0; c < h.channels; ++c) {
        const uint8_t* p = row.data() + (size_t(x) * size_t(h.channels) + size_t(c)) * bps;
        s[c] = bps == 2 ? uint32_t(p[0]) << 8 | p[1] : p[0];  // 16-bit samples are big-endian
      }
      // Values as stored (no rescaling by maxval), as the stb reader before us returned them.
      dst[x] = float(h.channels == 3 ? image_luma(s[0], s[1], s[2]) : s[0]);
    }
  }
  img.bits = h.maxval > 255 ? 16 : 8;
  img.format = "pgm";
  return img;
}

}  // namespace sm
