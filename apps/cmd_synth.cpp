// `spinemark synth --schema lumbar-lateral --count N --seed S --out DIR [--size 512] [--bits 16]`:
// writes N synthetic lateral lumbar radiographs with their annotations (method.md §7.2, §2.1).
#include <cstdio>
#include <filesystem>
#include <string>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "models/geometry/schema.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "tensor/stopwatch.h"
#include "train/synth/synth.h"

namespace sm::app {
namespace {

struct SynthConfig {
  std::string schema = "lumbar-lateral";
  int count = 100;
  uint64_t seed = 1;
  std::string out;
  int size = 512;
  int bits = 16;
  int first = 0;
};

void synth_run(const SynthConfig& cfg) {
  const Schema schema = schema_load(cfg.schema);
  std::error_code ec;
  std::filesystem::create_directories(cfg.out, ec);  // recursive; the reason (e.g. permission) is named
  SM_CHECK(!ec && std::filesystem::is_directory(cfg.out),
           cfg.out << ": cannot create the output folder (" << (ec ? ec.message() : "not a folder") << ")");
  for (const std::string& n : file_tmp_stale_remove(cfg.out))
    std::fprintf(stderr, "synth: removed %s (a temporary left by a killed process)\n", n.c_str());
  // Never over earlier films: a name this run would write that exists already is refused before
  // anything is written, as import refuses a non-empty folder. Other films stay (extending a set
  // with --first past them is what --first is for).
  int clashes = 0;
  std::string first_clash;
  for (int i = 0; i < cfg.count; ++i) {
    char stem[32];
    std::snprintf(stem, sizeof stem, "synth_%06llu", static_cast<unsigned long long>(cfg.first + i));
    for (const char* ext : {".png", ".json"}) {
      const std::filesystem::path p = std::filesystem::path(cfg.out) / (std::string(stem) + ext);
      std::error_code ec_p;
      if (!std::filesystem::exists(std::filesystem::symlink_status(p, ec_p))) continue;
      if (clashes++ == 0) first_clash = p.string();
    }
  }
  SM_CHECK(clashes == 0, cfg.out << ": already holds " << clashes << " of the files this run would write (e.g. " << first_clash
                                 << "); refusing to replace them: write to a new or empty folder, or extend the set with --first "
                                 << "past its last index");
  SynthOptions opt;
  opt.size = cfg.size;
  const Stopwatch clock;
  for (int i = 0; i < cfg.count; ++i) {
    uint64_t index = uint64_t(cfg.first + i);
    char stem[32];
    std::snprintf(stem, sizeof stem, "synth_%06llu", static_cast<unsigned long long>(index));
    synth_write(cfg.out, stem, synth_generate(schema, cfg.seed, index, opt), schema, cfg.bits);
  }
  const double s = clock.seconds();
  std::fprintf(stderr, "synth: wrote %d images (%dx%d, %d-bit) to %s in %.2f s (%.1f images/s)\n", cfg.count, cfg.size,
               cfg.size, cfg.bits, cfg.out.c_str(), s, cfg.count / std::max(1e-9, s));
}

void synth_setup(CLI::App& root) {
  auto cfg = std::make_shared<SynthConfig>();
  CLI::App* cmd = root.add_subcommand("synth", "Generate synthetic lateral lumbar radiographs with exact annotations");
  cmd->add_option("--schema", cfg->schema, "schema (only lumbar-lateral is supported)")->capture_default_str();
  cmd->add_option("--count", cfg->count, "number of images")->capture_default_str()->check(CLI::Range(0, 10000000));
  cmd->add_option("--seed", cfg->seed, "master seed; image i depends only on (seed, i)")->capture_default_str()->check(seed_check());
  cmd->add_option("--out", cfg->out, "output folder")->required();
  cmd->add_option("--size", cfg->size, "image side in pixels")->capture_default_str()->check(CLI::Range(64, 8192));
  cmd->add_option("--bits", cfg->bits, "PNG bit depth (8 or 16)")->capture_default_str()->check(CLI::IsMember({8, 16}));
  // first + count stays below 2^31: the index never wraps.
  cmd->add_option("--first", cfg->first, "index of the first image (to extend a set)")->capture_default_str()->check(CLI::Range(0, 1000000000));
  cmd->callback([cfg] { synth_run(*cfg); });
}

}  // namespace
}  // namespace sm::app

SM_REGISTER_COMMAND(synth, 41, sm::app::synth_setup);
