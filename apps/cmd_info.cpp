// `spinemark info [--header-only] FILE...`: one JSON line per file in the "Image info" format of
// method.md §2.1, {"file","format","width","height","bits","pixel_spacing_mm"} or {"file","error"};
// exit code 1 when any file failed (the others are still reported). Every file is decoded unless
// --header-only: a header can be perfect while the pixels are cut short (issue 11 item 4).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/command.h"
#include "models/image/image_io.h"
#include "tensor/check.h"

namespace sm::app {
namespace {

struct InfoConfig {
  std::vector<std::string> files;
  bool header_only = false;
};

nlohmann::ordered_json info_json(const std::string& file, ImageCheck check) {
  nlohmann::ordered_json j;
  j["file"] = file;
  try {
    ImageInfo info = image_info(file, check);
    j["format"] = info.format;
    j["width"] = info.width;
    j["height"] = info.height;
    j["bits"] = info.bits;
    j["pixel_spacing_mm"] = info.pixel_spacing_mm ? nlohmann::ordered_json(*info.pixel_spacing_mm) : nlohmann::ordered_json(nullptr);
  } catch (const std::exception& e) {
    std::string reason = e.what();
    // image_info's messages start with "<file>: "; the JSON already names the file.
    if (reason.rfind(file + ": ", 0) == 0) reason = reason.substr(file.size() + 2);
    j["error"] = reason;
  }
  return j;
}

void info_run(const InfoConfig& cfg) {
  int failed = 0;
  for (const std::string& f : cfg.files) {
    nlohmann::ordered_json j = info_json(f, cfg.header_only ? ImageCheck::header : ImageCheck::pixels);
    failed += j.contains("error");
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  }
  std::fflush(stdout);
  if (failed) command_set_exit_code(1);
}

void info_setup(CLI::App& root) {
  auto cfg = std::make_shared<InfoConfig>();
  CLI::App* cmd = root.add_subcommand("info", "Print each image's format, size, bit depth and pixel spacing as JSON lines");
  cmd->add_option("files", cfg->files, "image files (PNG, JPEG, BMP, PGM, DICOM)")->required();
  cmd->add_flag("--header-only", cfg->header_only,
                "read only each file's header (fast; does not notice truncated or damaged pixel data)");
  cmd->callback([cfg] { info_run(*cfg); });
}

}  // namespace
}  // namespace sm::app

SM_REGISTER_COMMAND(info, 40, sm::app::info_setup);
