// Whole-file I/O with clear errors: atomic writes (temporary file in the same folder, flush,
// fsync, rename) so that an interrupted or failed write never leaves a half-written file.
#pragma once
#include <string>

namespace sm {

// Throws sm::Error naming the path and the reason (e.g. "No space left on device").
void file_write_atomic(const std::string& path, const std::string& bytes);
std::string file_read_all(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace sm
