// Fuzz target: image header reading and decoding (models/image/image_io.cpp, models/image/dicom_io.cpp) for
// every format the sniffer knows (PNG, JPEG, BMP, PGM/PPM, DICOM with and without preamble).
// The bytes go through a file because the readers take paths, as the program uses them.
#include <fstream>

#include "fuzz_support.h"
#include "models/image/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // SPINEMARK_FUZZ_SKIP_JPEG: leave JPEG out, so that a known JPEG finding (stb_image's Huffman
  // table overflow, docs/reliability.md) does not stop the fuzzing of the other formats.
  static const bool skip_jpeg = std::getenv("SPINEMARK_FUZZ_SKIP_JPEG") != nullptr;
  if (skip_jpeg && size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return 0;
  const std::string path = (sm::fuzz::scratch_dir() / "input.img").string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  sm::ImageReadOptions options;
  options.max_pixels = 1 << 22;  // a 4-megapixel cap keeps each run short; the check itself is fuzzed
  sm::fuzz::expect_sm_error_only([&] {
    const sm::ImageInfo info = sm::image_info(path);
    if (info.width <= 0 || info.height <= 0) {
      std::fprintf(stderr, "fuzz: image_info accepted a %dx%d image\n", info.width, info.height);
      std::abort();
    }
  });
  sm::fuzz::expect_sm_error_only([&] {
    const sm::Image image = sm::image_read(path, options);
    if (image.width <= 0 || image.height <= 0 || int64_t(image.width) * image.height > options.max_pixels ||
        image.data.size() != size_t(image.width) * size_t(image.height)) {
      std::fprintf(stderr, "fuzz: image_read returned a %dx%d image\n", image.width, image.height);
      std::abort();
    }
  });
  sm::ImageReadOptions raw = options;
  raw.dicom_apply_voi = false;
  if (sm::image_format_sniff(sm::fuzz::bytes_of(data, size < 256 ? size : 256), path) == "dicom")
    sm::fuzz::expect_sm_error_only([&] { (void)sm::image_read(path, raw); });
  return 0;
}
