// The decoders behind image_read and image_info (models/image/image_io.cpp picks one by the file's first
// bytes): PNG through libpng, JPEG through libjpeg-turbo, PGM/PPM by hand, BMP through stb_image
// behind our own header checks, DICOM through DCMTK. Internal to train/.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "models/image/image_io.h"

namespace sm {

struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileClose>;

// Opens a regular file for reading; a directory, a missing file or an empty one fails with a
// message naming the file. `size` receives its length in bytes.
FilePtr image_file_open(const std::string& path, uint64_t* size);
// Up to n bytes at `offset` (fewer at the end of the file).
std::string image_file_bytes(FILE* f, uint64_t offset, size_t n);
// Refuses w x h before anything of that size is allocated.
void image_pixels_check(const std::string& path, int64_t w, int64_t h, int64_t max_pixels);
// Grey level of an RGB sample (ITU-R BT.601 weights in 8-bit fixed point, as stb_image and our
// earlier reader used, so that colour files give the same values as before).
inline uint32_t image_luma(uint32_t r, uint32_t g, uint32_t b) { return (r * 77 + g * 150 + b * 29) >> 8; }

ImageInfo png_header_read(const std::string& path);
Image png_decode(const std::string& path, const ImageReadOptions& options);
ImageInfo jpeg_header_read(const std::string& path);
Image jpeg_decode(const std::string& path, const ImageReadOptions& options);
ImageInfo pnm_header_read(const std::string& path);
Image pnm_decode(const std::string& path, const ImageReadOptions& options);
ImageInfo bmp_header_read(const std::string& path);
Image bmp_decode(const std::string& path, const ImageReadOptions& options);

// A JPEG frame header (SOFn): what the markers before the first scan say about the image.
struct JpegFrame {
  int marker = 0;  // 0xC0..0xCF (SOF0..SOF15) or 0xF7 (JPEG-LS)
  int precision = 0, width = 0, height = 0, components = 0;
};
// Walks a JPEG stream's markers from SOI to the frame header; `bytes(offset, n)` returns up to n
// bytes of the stream at `offset`, so a file is read a few bytes per segment, never whole. Fails
// with "<what>: <reason>" when the stream ends or breaks before a frame header.
JpegFrame jpeg_frame_find(const std::string& what, const std::function<std::string(uint64_t, size_t)>& bytes);

}  // namespace sm
