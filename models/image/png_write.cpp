// PNG writing (PNG spec, ISO/IEC 15948): 8/16-bit grayscale and 8-bit RGB. stb_image_write has
// no 16-bit PNG, so we assemble the chunks ourselves and borrow only its zlib compressor.
#ifdef SPINEMARK_STB_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#endif
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "models/image/image_io.h"
#include "tensor/check.h"
#include "tensor/file_io.h"

#ifndef SPINEMARK_STB_IMPLEMENTATION
// Defined (extern "C") in Debian's libstb together with the rest of stb_image_write.
extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len, int quality);
#endif

namespace sm {

namespace {

uint32_t png_crc(const uint8_t* p, size_t n, uint32_t crc = 0xFFFFFFFFu) {
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

void be32_put(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(char((v >> s) & 0xFF));
}

void png_chunk_put(std::string& out, const char type[4], const uint8_t* data, size_t n) {
  be32_put(out, uint32_t(n));
  size_t start = out.size();
  out.append(type, 4);
  out.append(reinterpret_cast<const char*>(data), n);
  be32_put(out, png_crc(reinterpret_cast<const uint8_t*>(out.data() + start), n + 4) ^ 0xFFFFFFFFu);
}

// Each scanline gets filter Sub (1) or Up (2), whichever has the smaller sum of |residual|
// (the usual heuristic; smooth radiographs compress about twice as well as unfiltered).
std::vector<uint8_t> png_scanlines_filter(const uint8_t* raw, int width, int height, int bpp) {
  size_t row = size_t(width) * size_t(bpp);
  std::vector<uint8_t> out((row + 1) * size_t(height));
  std::vector<uint8_t> sub(row), up(row);
  for (int y = 0; y < height; ++y) {
    const uint8_t* cur = raw + size_t(y) * row;
    const uint8_t* prev = y ? cur - row : nullptr;
    long cost_sub = 0, cost_up = 0;
    for (size_t i = 0; i < row; ++i) {
      sub[i] = uint8_t(cur[i] - (i >= size_t(bpp) ? cur[i - bpp] : 0));
      up[i] = uint8_t(cur[i] - (prev ? prev[i] : 0));
      cost_sub += std::abs(int(int8_t(sub[i])));
      cost_up += std::abs(int(int8_t(up[i])));
    }
    uint8_t* dst = &out[size_t(y) * (row + 1)];
    bool use_up = cost_up < cost_sub;
    dst[0] = use_up ? 2 : 1;
    std::memcpy(dst + 1, use_up ? up.data() : sub.data(), row);
  }
  return out;
}

}  // namespace

std::string png_encode(const void* samples, int width, int height, int channels, int bits,
                       const std::vector<std::pair<std::string, std::string>>& text) {
  SM_CHECK(width > 0 && height > 0, "png_encode: empty image " << width << "x" << height);
  SM_CHECK((channels == 1 && (bits == 8 || bits == 16)) || (channels == 3 && bits == 8),
           "png_encode: unsupported channels/bits " << channels << "/" << bits);
  const int bpp = channels * bits / 8;
  std::vector<uint8_t> raw(size_t(width) * size_t(height) * size_t(bpp));
  if (bits == 16) {  // PNG stores 16-bit samples big-endian
    const auto* s = static_cast<const uint16_t*>(samples);
    for (size_t i = 0; i < raw.size() / 2; ++i) {
      raw[2 * i] = uint8_t(s[i] >> 8);
      raw[2 * i + 1] = uint8_t(s[i] & 0xFF);
    }
  } else {
    std::memcpy(raw.data(), samples, raw.size());
  }
  std::vector<uint8_t> filtered = png_scanlines_filter(raw.data(), width, height, bpp);
  SM_CHECK(filtered.size() < size_t(INT32_MAX), "png_encode: image too large for one IDAT stream");
  int zlen = 0;
  unsigned char* z = stbi_zlib_compress(filtered.data(), int(filtered.size()), &zlen, 5);
  SM_CHECK(z, "png_encode: compression failed (out of memory?)");
  std::string out("\x89PNG\r\n\x1a\n", 8);
  uint8_t ihdr[13];
  for (int i = 0; i < 4; ++i) {
    ihdr[i] = uint8_t(uint32_t(width) >> (24 - 8 * i));
    ihdr[4 + i] = uint8_t(uint32_t(height) >> (24 - 8 * i));
  }
  ihdr[8] = uint8_t(bits);
  ihdr[9] = channels == 3 ? 2 : 0;  // colour type: truecolour or grayscale
  ihdr[10] = ihdr[11] = ihdr[12] = 0;  // deflate, adaptive filtering, no interlace
  png_chunk_put(out, "IHDR", ihdr, 13);
  for (const auto& [keyword, value] : text) {  // keyword, a zero byte, the text (PNG spec 11.3.4.3)
    SM_CHECK(!keyword.empty() && keyword.size() < 80 && keyword.find('\0') == std::string::npos,
             "png_encode: a tEXt keyword has 1 to 79 characters, got '" << keyword << "'");
    const std::string data = keyword + '\0' + value;
    png_chunk_put(out, "tEXt", reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  png_chunk_put(out, "IDAT", z, size_t(zlen));
  std::free(z);
  png_chunk_put(out, "IEND", nullptr, 0);
  return out;
}

void image_write_png(const std::string& path, const Image& image, const PngWriteOptions& options) {
  SM_CHECK(!image.empty() && image.data.size() == size_t(image.width) * size_t(image.height),
           "image_write_png: '" << path << "': empty or inconsistent image " << image.width << "x" << image.height);
  SM_CHECK(options.bits == 8 || options.bits == 16, "image_write_png: bits must be 8 or 16, got " << options.bits);
  float lo = options.lo, hi = options.hi;
  if (!(lo < hi)) {  // auto window: the image's range
    auto mm = std::minmax_element(image.data.begin(), image.data.end());
    lo = *mm.first;
    hi = *mm.second > lo ? *mm.second : lo + 1.f;
  }
  const float top = options.bits == 16 ? 65535.f : 255.f;
  const float scale = top / (hi - lo);
  auto quantise = [&](float v) {
    float q = std::nearbyint((v - lo) * scale);
    return q != q ? 0.f : std::clamp(q, 0.f, top);  // NaN -> 0
  };
  std::string bytes;
  if (options.bits == 16) {
    std::vector<uint16_t> px(image.data.size());
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint16_t(quantise(image.data[i]));
    bytes = png_encode(px.data(), image.width, image.height, 1, 16);
  } else {
    std::vector<uint8_t> px(image.data.size());
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(quantise(image.data[i]));
    bytes = png_encode(px.data(), image.width, image.height, 1, 8);
  }
  file_write_atomic(path, bytes);
}

}  // namespace sm
