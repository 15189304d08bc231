// Trustworthy outputs (issue "Trustworthy outputs", docs/reliability.md "What the outputs
// guarantee"): train, eval, synth, angles and the dataset listing never destroy inputs or earlier
// work, --resume resumes only the same work, and what is skipped is named with a non-zero exit.
// Tiny runs in-process (as test_training does) and the spinemark program built next to this test.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tensor/file_io.h"
#include "tensor/kernels/cpu_kernels_select.h"
#include "test_support.h"
#include "training_fixture.h"
#include "train/data/dataset.h"
#include "train/eval/eval.h"
#include "train/run/train_run.h"
#include "train/synth/synth.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

using test::config_tiny;
using test::synth_folder;

struct Logged {
  std::string text;
  bool has(const std::string& part) const { return text.find(part) != std::string::npos; }
};

TrainRunResult run(const TrainConfig& c, const std::string& out, bool resume, Logged* log = nullptr, bool overwrite = false,
                   std::vector<std::string> ignored = {}) {
  TrainRunOptions o;
  o.out = out;
  o.resume = resume;
  o.overwrite = overwrite;
  o.evaluate = false;
  o.ignored_on_resume = std::move(ignored);
  if (log) o.log = [log](const std::string& line) { log->text += line + "\n"; };
  return train_run(c, o);
}

std::string weights(const std::string& model, const std::string& stage) {
  return file_read_all((fs::path(model) / (stage + ".safetensors")).string());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A pid that no process has now (a child that has exited and been reaped).
int pid_dead() {
  const pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  ::waitpid(p, nullptr, 0);
  return int(p);
}

struct Cmd {
  int rc = -1;
  std::string out, err;
};

// bin/spinemark with `args` (a shell command line), stdout and stderr captured.
Cmd spinemark(const test::TempDir& dir, const std::string& args) {
  const std::string o = dir.file("stdout.txt"), e = dir.file("stderr.txt");
  const std::string cmd = std::string(SPINEMARK_BINARY_DIR) + "/spinemark " + args + " >" + o + " 2>" + e;
  const int status = std::system(cmd.c_str());
  Cmd c;
  c.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  c.out = file_read_all(o);
  c.err = file_read_all(e);
  return c;
}

// Rewrites every annotation of a folder through `edit`.
void annotations_edit(const std::string& folder, const std::function<void(nlohmann::json&)>& edit) {
  for (const auto& f : fs::directory_iterator(folder))
    if (f.path().extension() == ".json") {
      nlohmann::json j = nlohmann::json::parse(file_read_all(f.path().string()));
      edit(j);
      std::ofstream(f.path()) << j.dump();
    }
}

}  // namespace

TEST_CASE("trust: train refuses a folder holding a run unless --resume or --overwrite") {
  test::TempDir dir("trust_overwrite");
  TrainConfig cfg = config_tiny(synth_folder(dir));
  cfg.detect.stop_after_steps = 2;  // an interrupted run
  const std::string out = dir.file("run");
  REQUIRE_FALSE(run(cfg, out, false).completed);
  const fs::path ckpt = fs::path(out) / "detect" / "checkpoint.json";
  REQUIRE(fs::exists(ckpt));
  const std::string err = error_of([&] { run(cfg, out, false); });
  CHECK(contains(err, "already holds a training run"));
  CHECK(contains(err, "--resume"));
  CHECK(contains(err, "--overwrite"));
  CHECK(fs::exists(ckpt));  // nothing of the earlier run was deleted
  CHECK_FALSE(run(cfg, out, false, nullptr, true).completed);  // --overwrite: afresh, by request
}

TEST_CASE("trust: --resume keeps the recorded split, names films added or gone, says which options it ignores") {
  test::TempDir dir("trust_split");
  const std::string data = synth_folder(dir);
  TrainConfig cfg = config_tiny(data);
  cfg.detect.stop_after_steps = 2;
  const std::string out = dir.file("run");
  REQUIRE_FALSE(run(cfg, out, false).completed);
  const std::string split = file_read_all((fs::path(out) / "split.json").string());
  // The folder changes: two new films, and a symbolic-link loop among the annotations.
  const Schema& s = schema_builtin("lumbar-lateral");
  for (int i = 8; i < 10; ++i) synth_write(data, "f" + std::to_string(i), synth_generate(s, 21, uint64_t(i), SynthOptions{192}), s, 16);
  fs::create_symlink("loop.json", fs::path(data) / "loop.json");
  Logged log;
  const TrainRunResult r = run(TrainConfig{}, out, true, &log, false, {"--config", "--threads"});
  CHECK(r.completed);
  CHECK(file_read_all((fs::path(out) / "split.json").string()) == split);
  CHECK(log.has("recorded split"));
  CHECK(log.has("2 film(s) added"));
  CHECK(log.has("f8.json"));
  CHECK(log.has("--config and --threads ignored with --resume"));
  CHECK(log.has("loop.json: symbolic link loop"));
}

TEST_CASE("trust: a damaged latest checkpoint falls back to the previous one of the ring, bit-identical") {
  test::TempDir dir("trust_ring");
  const TrainConfig cfg = config_tiny(synth_folder(dir));
  const TrainRunResult full = run(cfg, dir.file("full"), false);
  REQUIRE(full.completed);
  for (const char* part : {"weights", "state"}) {
    CAPTURE(part);
    TrainConfig c = cfg;
    c.detect.stop_after_steps = 4;  // checkpoints at step 3 (validation) and 4 (the stop)
    const std::string out = dir.file(std::string("cut_") + part);
    REQUIRE_FALSE(run(c, out, false).completed);
    const fs::path damaged = fs::path(out) / "detect" / (std::string("ckpt-000000004.") + part + ".safetensors");
    REQUIRE(fs::exists(damaged));
    fs::resize_file(damaged, fs::file_size(damaged) / 2);  // truncated
    Logged log;
    const TrainRunResult r = run(TrainConfig{}, out, true, &log);
    REQUIRE(r.completed);
    CHECK(log.has("ckpt-000000004 is damaged"));
    CHECK(log.has("resuming from the previous checkpoint ckpt-000000003"));
    for (const char* s : {"detect", "coarse", "refine"}) CHECK_MESSAGE(weights(r.model_dir, s) == weights(full.model_dir, s), s);
  }
}

TEST_CASE("trust: stale temporaries of a killed process are removed from the run and stage folders, and named") {
  test::TempDir dir("trust_tmp");
  TrainConfig cfg = config_tiny(synth_folder(dir));
  cfg.detect.stop_after_steps = 2;
  const std::string out = dir.file("run");
  REQUIRE_FALSE(run(cfg, out, false).completed);
  const std::string pid = std::to_string(pid_dead());
  const fs::path a = fs::path(out) / ("config.json.tmp." + pid), b = fs::path(out) / "detect" / ("ckpt-000000003.state.safetensors.tmp." + pid);
  std::ofstream(a) << "x";
  std::ofstream(b) << "x";
  Logged log;
  run(TrainConfig{}, out, true, &log);
  CHECK_FALSE(fs::exists(a));
  CHECK_FALSE(fs::exists(b));
  CHECK(log.has("removed " + a.string()));
  CHECK(log.has("removed " + b.string()));
}

TEST_CASE("trust: the CPU kernel family is recorded, pinned by the config, and a resume on another family warns") {
  test::TempDir dir("trust_kernels");
  TrainConfig cfg = config_tiny(synth_folder(dir));
  cfg.cpu_kernels = "portable";
  cfg.detect.stop_after_steps = 2;
  const std::string out = dir.file("run");
  REQUIRE_FALSE(run(cfg, out, false).completed);
  const std::string cfg_text = file_read_all((fs::path(out) / "config.json").string());
  CHECK(nlohmann::json::parse(cfg_text)["cpu_kernels"] == "portable");
  std::string run_text = file_read_all((fs::path(out) / "run.json").string());
  CHECK(nlohmann::json::parse(run_text.substr(0, run_text.find('\n')))["cpu_kernels"] == "portable");
  // As if the run had started on another machine's family.
  const size_t at = run_text.find("\"portable\"");
  run_text.replace(at, 10, "\"avx512\"");
  std::ofstream(fs::path(out) / "run.json") << run_text;
  Logged log;
  run(TrainConfig{}, out, true, &log);
  CHECK(log.has("warning: this run started on the avx512 CPU kernels and resumes on portable"));
  cpu_kernels_default_set(CpuKernels::Auto);  // the rest of this process: the default again
  CHECK(contains(error_of([] {
    train_config_from_json(nlohmann::json::parse(R"({"data": {"train": "x"}, "cpu_kernels": "fast"})"), "cfg");
  }), "cpu_kernels 'fast'"));
}

TEST_CASE("trust: data with no landmarks, landmarks far outside the films, or a validation split without landmarks is refused before training") {
  test::TempDir dir("trust_data");
  struct Case {
    const char* name;
    std::function<void(nlohmann::json&)> edit;
    bool val_only;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"hidden", [](nlohmann::json& j) { for (auto& [k, v] : j["landmarks"].items()) j["visible"][k] = false; }, false,
       "the training data has no landmarks"},
      {"far", [](nlohmann::json& j) { for (auto& [k, v] : j["landmarks"].items()) v = {v[0].get<double>() * 4, v[1].get<double>() * 4}; },
       false, "far outside the film"},
      {"val", [](nlohmann::json& j) { j["landmarks"] = nlohmann::json::object(); j.erase("visible"); }, true,
       "the validation split has no landmarks"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::string train = synth_folder(dir, std::string("train_") + c.name, 4);
    TrainConfig cfg = config_tiny(train);
    if (c.val_only) {
      cfg.val_data = synth_folder(dir, std::string("val_") + c.name, 2);
      annotations_edit(cfg.val_data, c.edit);
    } else {
      annotations_edit(train, c.edit);
    }
    const std::string out = dir.file(std::string("run_") + c.name);
    const std::string err = error_of([&] { run(cfg, out, false); });
    CHECK_MESSAGE(contains(err, c.message), err);
    CHECK_FALSE(fs::exists(fs::path(out) / "detect"));  // refused before any training
  }
}

TEST_CASE("trust: dataset listing skips a symbolic-link loop or a dangling link by name, never a raw filesystem error") {
  test::TempDir dir("trust_links");
  const std::string data = synth_folder(dir, "data", 2);
  fs::create_symlink("loop.json", fs::path(data) / "loop.json");
  fs::create_symlink("nowhere.json", fs::path(data) / "gone.json");
  std::vector<std::string> skipped;
  DatasetOptions o;
  o.on_skipped = [&](const std::string& source, const std::string& why) { skipped.push_back(fs::path(source).filename().string() + ": " + why); };
  std::vector<DatasetEntry> entries;
  CHECK_NOTHROW(entries = dataset_list(data, o));
  CHECK(entries.size() == 2);
  REQUIRE(skipped.size() == 2);
  CHECK(contains(skipped[0] + skipped[1], "gone.json: dangling symbolic link"));
  CHECK(contains(skipped[0] + skipped[1], "loop.json: symbolic link loop"));
  CHECK_NOTHROW(dataset_list(data));  // without callbacks: skipped all the same

  const Cmd a = spinemark(dir, "angles --data " + data);
  CHECK(a.rc == 1);
  CHECK(contains(a.err, "loop.json: symbolic link loop"));
  CHECK(contains(a.err, "gone.json: dangling symbolic link"));
  CHECK(std::count(a.out.begin(), a.out.end(), '\n') == 2);  // the readable ones still written
}

TEST_CASE("trust: eval skips an unreadable film by name (metrics.json, report), goes on, exits non-zero; refuses the data folder as --out") {
  test::TempDir dir("trust_eval");
  const std::string data = synth_folder(dir);
  const TrainConfig cfg = config_tiny(data);
  const TrainRunResult trained = run(cfg, dir.file("run"), false);
  REQUIRE(trained.completed);
  std::ofstream(fs::path(data) / "f3.png", std::ios::trunc) << "not a PNG";
  fs::create_symlink("loop.json", fs::path(data) / "loop.json");
  const std::string model = trained.model_dir, out = dir.file("eval");
  const std::string pid = std::to_string(pid_dead());
  fs::create_directories(out);
  std::ofstream(fs::path(out) / ("metrics.json.tmp." + pid)) << "x";
  const Cmd e = spinemark(dir, "eval --model " + model + " --data " + data + " --out " + out);
  CHECK(e.rc == 1);
  CHECK(contains(e.err, "f3.json: the film cannot be read"));
  CHECK(contains(e.err, "loop.json"));
  CHECK(contains(e.err, "removed metrics.json.tmp." + pid));
  REQUIRE(fs::exists(fs::path(out) / "metrics.json"));
  const nlohmann::json m = nlohmann::json::parse(file_read_all((fs::path(out) / "metrics.json").string()));
  CHECK(m["images"] == 7);
  REQUIRE(m["skipped"].size() == 2);
  CHECK(contains(m["skipped"].dump(), "f3.json"));
  CHECK(contains(file_read_all((fs::path(out) / "report.html").string()), "Skipped: 2 film(s) not evaluated"));
  // Again into its own earlier output: allowed (eval's files only).
  CHECK(spinemark(dir, "eval --model " + model + " --data " + data + " --out " + out).rc == 1);
  CHECK(m["images"] == 7);

  // --out into the data (the folder itself, a folder inside it), or a folder of someone else's files.
  fs::remove(fs::path(data) / "loop.json");
  const std::string other = dir.file("other");
  fs::create_directories(other);
  std::ofstream(fs::path(other) / "x.json") << "{}";
  const std::string foreign_metrics = dir.file("foreign");
  fs::create_directories(foreign_metrics);
  std::ofstream(fs::path(foreign_metrics) / "metrics.json") << "{\"mine\": 1}";
  for (const std::string& bad : {data, data + "/", data + "/results", other, foreign_metrics}) {
    CAPTURE(bad);
    const Cmd r = spinemark(dir, "eval --model " + model + " --data " + data + " --out " + bad);
    CHECK(r.rc == 1);
    CHECK((contains(r.err, "data folder") || contains(r.err, "eval does not write") || contains(r.err, "not a metrics.json written by eval")));
  }
  CHECK_FALSE(fs::exists(fs::path(data) / "metrics.json"));
  CHECK_FALSE(fs::exists(fs::path(data) / "results"));
  CHECK(file_read_all((fs::path(foreign_metrics) / "metrics.json").string()) == "{\"mine\": 1}");
  CHECK(dataset_list(data).size() == 8);  // the dataset still reads
}

TEST_CASE("trust: synth never replaces films of the same names; --first extends a set; stale temporaries removed") {
  test::TempDir dir("trust_synth");
  const std::string out = dir.file("films");
  REQUIRE(spinemark(dir, "synth --count 2 --seed 1 --size 64 --out " + out).rc == 0);
  const std::string before = file_read_all((fs::path(out) / "synth_000001.png").string());
  const Cmd again = spinemark(dir, "synth --count 3 --seed 2 --size 64 --out " + out);
  CHECK(again.rc == 1);
  CHECK(contains(again.err, "already holds 4 of the files"));
  CHECK(file_read_all((fs::path(out) / "synth_000001.png").string()) == before);
  CHECK_FALSE(fs::exists(fs::path(out) / "synth_000002.png"));  // nothing written at all
  const std::string pid = std::to_string(pid_dead());
  std::ofstream(fs::path(out) / ("synth_000002.png.tmp." + pid)) << "x";
  const Cmd more = spinemark(dir, "synth --count 1 --first 2 --seed 1 --size 64 --out " + out);
  CHECK(more.rc == 0);
  CHECK(contains(more.err, "removed synth_000002.png.tmp." + pid));
  CHECK(fs::exists(fs::path(out) / "synth_000002.png"));
  CHECK_FALSE(fs::exists(fs::path(out) / ("synth_000002.png.tmp." + pid)));
}
