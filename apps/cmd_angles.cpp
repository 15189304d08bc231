// `spinemark angles --data DIR`: one JSON line per image {"image": ..., "angles": {...}} (method.md
// §2.1) from the ground-truth landmarks (train/data/dataset.h: dataset_angles_line; for the AASCE
// Cobb rule on the stored order, so that angles.csv is reproduced, method.md §7.1).
#include <cstdio>
#include <iostream>

#include "apps/command.h"
#include "tensor/check.h"
#include "train/data/dataset.h"

namespace sm::app {

namespace {

struct AnglesConfig {
  std::string data;
  std::vector<std::string> schema_files;
};

// "spinemark angles: <source>: <reason>", without repeating the source when the reason names it.
void error_report(const std::string& source, const std::string& what) {
  const bool named = what.compare(0, source.size(), source) == 0;
  std::fprintf(stderr, "spinemark angles: %s\n", (named ? what : source + ": " + what).c_str());
}

// A bad annotation is reported by name and skipped; the others are still written, and the exit
// code says that something was skipped.
void angles_run(const AnglesConfig& cfg) {
  for (const auto& f : cfg.schema_files) schema_register(schema_load(f));
  int errors = 0;
  DatasetOptions opt;
  opt.check_images_exist = false;  // only needed when the Cobb rule must read the image height
  opt.on_bad_entry = [&errors](const std::string& source, const std::string& what) {
    error_report(source, what);
    ++errors;
  };
  int written = 0;
  for (const auto& e : dataset_list(cfg.data, opt)) {
    try {
      const std::string text = dataset_angles_line(e).dump();
      std::cout << text << "\n";
      ++written;
    } catch (const std::exception& ex) {
      error_report(e.source, ex.what());
      ++errors;
    }
  }
  std::cout.flush();
  if (errors > 0) {
    std::fprintf(stderr, "spinemark angles: %d annotations written, %d skipped with errors\n", written, errors);
    command_set_exit_code(1);
  }
}

void angles_setup(CLI::App& root) {
  auto cfg = std::make_shared<AnglesConfig>();
  CLI::App* cmd = root.add_subcommand("angles", "Angles from each image's ground-truth landmarks, one JSON line per image");
  cmd->add_option("--data", cfg->data, "dataset folder (one JSON per image) or .jsonl manifest")->required();
  cmd->add_option("--schema-file", cfg->schema_files, "extra schema definition (JSON) used by the annotations");
  cmd->callback([cfg]() { angles_run(*cfg); });
}

}  // namespace

SM_REGISTER_COMMAND(angles, 31, angles_setup);

}  // namespace sm::app
