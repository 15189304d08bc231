// Whole-file I/O with clear errors: atomic writes (temporary file in the same folder, flush,
// fsync, rename) so that an interrupted or failed write never leaves a half-written file.
#pragma once
#include <string>
#include <vector>

namespace sm {

// Throws sm::Error naming the path and the reason (e.g. "No space left on device").
void file_write_atomic(const std::string& path, const std::string& bytes);
std::string file_read_all(const std::string& path);
bool file_exists(const std::string& path);

// Removes what killed writers left in `folder`: entries named `<name>.tmp.<pid>` (the temporary
// files of file_write_atomic and the temporary folders of the model and import writers) whose
// process no longer runs. A live process's temporary is left alone, so two programs may share a
// folder. Not recursive. Returns the names removed (the caller may report them); a folder that
// does not exist yet has nothing to remove.
std::vector<std::string> file_tmp_stale_remove(const std::string& folder);

}  // namespace sm
