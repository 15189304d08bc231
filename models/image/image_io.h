// Image input and output (issue 3, method.md §2.1 "Image info", §7.3): PNG 8/16-bit through
// libpng, JPEG through libjpeg-turbo, PGM/PPM by hand, BMP through stb_image; DICOM through DCMTK
// when built with it (SPINEMARK_DICOM). Every failure is an sm::Error whose one-line message
// starts with the file's path and gives the cause (issue 11).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "models/image/image.h"

namespace sm {

struct ImageReadOptions {
  // Refuse images with more pixels than this, checked from the header before any allocation.
  int64_t max_pixels = 100'000'000;
  // DICOM: apply the file's first VOI window (or VOI LUT) when it has one. Off: map the whole
  // min..max of the image's modality values linearly to the output range. See dicom_io.cpp.
  bool dicom_apply_voi = true;
};

struct ImageInfo {
  std::string format;  // "png", "jpeg", "bmp", "pgm", "dicom"
  int width = 0;
  int height = 0;
  int bits = 8;        // bits per sample of the stored image (DICOM: Bits Stored)
  // (row, col); DICOM only, and only when finite and within 1e-4..1e3 mm (else absent)
  std::optional<std::array<double, 2>> pixel_spacing_mm;
};

// How far image_info looks: `pixels` decodes the whole image (what image_read would do) and
// fails whenever image_read would; `header` reads only the header bytes (fast, never the whole
// file) and cannot see truncated or damaged pixel data.
enum class ImageCheck { pixels, header };

// Decodes one image to grayscale floats (colour images are converted to luminance). Values are
// the stored sample values: 0..255 (8-bit), 0..65535 (16-bit), 0..2^bits-1 (DICOM, see
// dicom_io.cpp). Throws sm::Error "<path>: <reason>" on any problem.
Image image_read(const std::string& path, const ImageReadOptions& options = {});
// Format, size, bit depth and pixel spacing; throws like image_read (see ImageCheck).
ImageInfo image_info(const std::string& path, ImageCheck check = ImageCheck::pixels);
// Format detected from the first bytes ("png", "jpeg", "bmp", "pgm", "dicom") or "" if unknown.
std::string image_format_sniff(const std::string& head, const std::string& path);

struct PngWriteOptions {
  int bits = 8;  // 8 or 16
  // Intensity window mapped to [0, 2^bits - 1]; when lo >= hi the image's min..max is used.
  float lo = 0.f;
  float hi = 0.f;
};

// Writes a grayscale PNG atomically (temporary file + rename). Values outside the window clip.
void image_write_png(const std::string& path, const Image& image, const PngWriteOptions& options = {});
// Encodes to PNG bytes in memory (8- or 16-bit grayscale, or 8-bit RGB when channels == 3).
// `samples` holds width*height*channels values, 16-bit ones as native uint16_t. Each `text`
// pair (keyword, Latin-1 text) becomes a tEXt chunk right after IHDR (e.g. "Software").
std::string png_encode(const void* samples, int width, int height, int channels, int bits,
                       const std::vector<std::pair<std::string, std::string>>& text = {});

// ---- DICOM (models/image/dicom_io.cpp) ------------------------------------------------------------
Image dicom_read(const std::string& path, const ImageReadOptions& options);
ImageInfo dicom_info(const std::string& path);

// Throws sm::Error("<path>: <reason>"): data errors name the file, not a source line.
[[noreturn]] void image_fail(const std::string& path, const std::string& reason);

}  // namespace sm
