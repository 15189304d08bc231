// `spinemark import aasce --src DIR --out DIR`: converts the SpineWeb-16 / AASCE layout into one
// annotation JSON per image (method.md §2.1, §7.1); prints the quirk report as JSON on stdout.
#include <cstdio>
#include <iostream>

#include "apps/command.h"
#include "train/data/aasce_import.h"

namespace sm::app {

namespace {

struct ImportAasceConfig {
  std::string src, out;
  bool absolute_paths = false;
};

// The report on stdout; each row left out on stderr by name, and a non-zero exit when any was.
void import_aasce_run(const ImportAasceConfig& cfg) {
  AasceImportOptions opt;
  opt.absolute_paths = cfg.absolute_paths;
  const nlohmann::json rep = aasce_import(cfg.src, cfg.out, opt);
  std::cout << rep.dump(2) << std::endl;
  for (const auto& e : rep["errors"]) std::fprintf(stderr, "spinemark import: %s\n", e.get<std::string>().c_str());
  for (const auto& n : rep["stale_temporaries_removed"])
    std::fprintf(stderr, "spinemark import: removed %s (a temporary left by a killed process)\n", n.get<std::string>().c_str());
  std::fprintf(stderr, "imported %d images into %s: %d regular", rep["images"].get<int>(), cfg.out.c_str(),
               rep["regular"].get<int>());
  for (auto it = rep["quirks"].begin(); it != rep["quirks"].end(); ++it)
    std::fprintf(stderr, ", %s %d", it.key().c_str(), it.value()["count"].get<int>());
  std::fprintf(stderr, "; Cobb rule on the stored order vs angles.csv: max |diff| %.4f deg\n",
               rep["cobb_stored_order_max_abs_diff_deg"].get<double>());
  if (!rep["complete"].get<bool>()) {
    std::fprintf(stderr, "spinemark import: %zu rows not imported; %s/%s lists them\n", rep["errors"].size(),
                 cfg.out.c_str(), kAasceIncompleteFile);
    command_set_exit_code(1);
  }
}

void import_setup(CLI::App& root) {
  CLI::App* imp = root.add_subcommand("import", "Convert a public dataset into spinemark annotations");
  imp->require_subcommand(1);
  auto cfg = std::make_shared<ImportAasceConfig>();
  CLI::App* aasce = imp->add_subcommand("aasce", "SpineWeb dataset 16 / AASCE 2019 (filenames.csv, landmarks.csv, "
                                                 "angles.csv, images/); images are referenced, never copied");
  aasce->add_option("--src", cfg->src, "AASCE folder")->required();
  aasce->add_option("--out", cfg->out, "output folder for the annotation JSON files (new or empty)")->required();
  aasce->add_flag("--absolute", cfg->absolute_paths, "write absolute image paths (default: relative to --out)");
  aasce->callback([cfg]() { import_aasce_run(*cfg); });
}

}  // namespace

SM_REGISTER_COMMAND(import, 30, import_setup);

}  // namespace sm::app
