// Fuzz target: the AASCE CSV import (train/data/aasce_import.cpp): filenames.csv, landmarks.csv and
// angles.csv of one folder, then the quirk detection and the annotation of every record. The
// input is the three files separated by lines "--8<--" (missing parts are empty files).
#include <fstream>

#include "fuzz_support.h"
#include "models/geometry/schema.h"
#include "train/data/aasce_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = (sm::fuzz::scratch_dir() / "aasce").string();
  static const bool made = std::filesystem::create_directories(dir) || true;
  (void)made;
  const std::string text = sm::fuzz::bytes_of(data, size);
  const std::string cut = "\n--8<--\n";
  size_t pos = 0;
  for (const char* name : {"filenames.csv", "landmarks.csv", "angles.csv"}) {
    size_t end = text.find(cut, pos);
    if (end == std::string::npos) end = text.size();
    std::ofstream(dir + "/" + name, std::ios::binary | std::ios::trunc) << text.substr(std::min(pos, text.size()), end - std::min(pos, text.size()));
    pos = end == text.size() ? end : end + cut.size();
  }
  sm::fuzz::expect_sm_error_only([&] {
    for (const sm::AasceRecord& r : sm::aasce_read(dir, false)) {
      const sm::AasceQuirks q = sm::aasce_quirks(r);
      (void)q.flags();
      const sm::Annotation a = sm::aasce_annotation(r, q, r.file);
      (void)sm::annotation_to_json(a, sm::schema_builtin("aasce-ap"));
    }
  });
  return 0;
}
