// Faults in training (issue 11 item 14), on the `spinemark` program built next to this test:
// SIGKILL at 20 seeded pseudo-random moments of a tiny run, each time resumed with --resume, must
// end with weights bit-identical to an uninterrupted run (CPU, same thread count); and a write
// that fails for lack of room (RLIMIT_FSIZE: EFBIG, the same failed write(2) as ENOSPC) while a
// checkpoint is written must leave the previous checkpoint loadable and the run resumable.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "tensor/file_io.h"
#include "tensor/rng.h"
#include "test_support.h"
#include "train/synth/synth.h"

using namespace sm;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Tiny networks, eight steps per stage and a checkpoint after every step (one validation each),
// so that a kill can land in a step, a validation, a checkpoint write or between stages.
constexpr int kCheckpoints = 24;
std::string config_write(const test::TempDir& dir) {
  const std::string data = dir.file("data");
  fs::create_directories(data);
  const Schema& s = schema_builtin("lumbar-lateral");
  for (int i = 0; i < 8; ++i) synth_write(data, "f" + std::to_string(i), synth_generate(s, 21, uint64_t(i), SynthOptions{160}), s, 16);
  nlohmann::json j = nlohmann::json::parse(R"({
    "schema": "lumbar-lateral", "preset": "small",
    "model": {"detect": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [64, 64]},
              "coarse": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [64, 64]},
              "refine": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [32, 32]}},
    "data": {"val_fraction": 0.25}, "seed": 9, "threads": 2,
    "stages": {"detect": {"steps": 8, "batch": 2, "validations": 8, "warmup_steps": 2},
               "coarse": {"steps": 8, "batch": 2, "validations": 8, "warmup_steps": 2},
               "refine": {"steps": 8, "batch": 4, "validations": 8, "warmup_steps": 2}}})");
  j["data"]["train"] = data;
  const std::string path = dir.file("config.json");
  file_write_atomic(path, j.dump(1));
  return path;
}

// Starts `spinemark train <args>` with stdout and stderr to `log`; fsize_limit > 0 caps the size
// of every file the program writes (a write beyond it fails with EFBIG; SIGXFSZ is ignored).
pid_t train_start(const std::vector<std::string>& args, const std::string& log, rlim_t fsize_limit = 0) {
  const std::string program = std::string(SPINEMARK_BINARY_DIR) + "/spinemark";
  std::vector<std::string> argv_s{program, "train"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) ::dup2(fd, 1), ::dup2(fd, 2);
    if (fsize_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit lim{fsize_limit, fsize_limit};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string weights_bytes(const std::string& run, const std::string& stage) {
  return file_read_all((fs::path(run) / "model" / (stage + ".safetensors")).string());
}

// The checkpoint pointers of the three stages: it changes whenever a checkpoint is complete.
std::string checkpoints_signature(const std::string& run) {
  std::string sig;
  for (const char* s : {"detect", "coarse", "refine"}) {
    const fs::path p = fs::path(run) / s / "checkpoint.json";
    try {
      sig += file_exists(p.string()) ? file_read_all(p.string()) : std::string("-");
    } catch (const Error&) {  // removed between the two calls by a fresh start
      sig += "-";
    }
  }
  return sig;
}

// The uninterrupted reference run, shared by both cases; its wall time sets the kill moments.
struct Reference {
  test::TempDir dir{"faults"};
  std::string config = config_write(dir);
  std::string run = dir.file("full");
  double seconds = 0;
  Reference() {
    const auto t0 = Clock::now();
    const int rc = wait_exit(train_start({"--config", config, "--out", run, "--no-eval"}, dir.file("full.log")));
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    REQUIRE_MESSAGE(rc == 0, file_read_all(dir.file("full.log")));
  }
};

Reference& reference() {
  static Reference r;
  return r;
}

}  // namespace

TEST_CASE("faults: SIGKILL at 20 seeded moments, each resumed, ends bit-identical to an uninterrupted run") {
  Reference& ref = reference();
  const double step_seconds = ref.seconds / kCheckpoints;
  Rng rng(20261202);
  int killed = 0, attempts = 0, chains = 0;
  // One run folder (a chain of kills and resumes) after another until 20 kills have landed: on a
  // loaded machine a chain may reach its end first. Each chain must end bit-identical.
  while (killed < 20 && attempts < 60) {
    const std::string run = ref.dir.file("killed_" + std::to_string(chains++));
    for (; killed < 20 && attempts < 60; ++attempts) {
      // A run killed before it wrote config.json has nothing to resume: it is started again.
      const bool resume = fs::exists(fs::path(run) / "config.json");
      std::vector<std::string> args = resume ? std::vector<std::string>{"--resume", "--out", run, "--no-eval"}
                                             : std::vector<std::string>{"--config", ref.config, "--out", run, "--no-eval"};
      // Every fourth kill lands within a step's time of the start (start-up, config and split
      // writing, the checkpoint load); the others a random time, up to a step, after the
      // attempt's first new checkpoint: in a step, a validation, a checkpoint write or a stage
      // change. Waiting for a checkpoint makes every attempt progress whatever the load.
      const bool early = attempts % 4 == 0;
      const double delay = rng.uniform(0.0, 1.0) * step_seconds;
      const std::string before = checkpoints_signature(run);
      const pid_t pid = train_start(args, ref.dir.file("killed.log"));
      bool exited = false;
      while (!early && !exited && checkpoints_signature(run) == before) {
        int status = 0;
        exited = ::waitpid(pid, &status, WNOHANG) == pid;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
      if (exited) break;  // this chain's run is complete: no moment is left to kill
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      ::kill(pid, SIGKILL);
      const int rc = wait_exit(pid);
      CAPTURE(attempts);
      if (rc == -SIGKILL) ++killed;
      else CHECK_MESSAGE(rc == 0, file_read_all(ref.dir.file("killed.log")));  // it finished first
    }
    const int rc = wait_exit(train_start({"--resume", "--out", run, "--no-eval"}, ref.dir.file("killed.log")));
    REQUIRE_MESSAGE(rc == 0, file_read_all(ref.dir.file("killed.log")));
    for (const char* s : {"detect", "coarse", "refine"})
      CHECK_MESSAGE(weights_bytes(run, s) == weights_bytes(ref.run, s), s);
  }
  MESSAGE("reference run " << ref.seconds << " s; " << killed << " kills landed in a running program in " << attempts
                           << " attempts, " << chains << " run(s)");
  CHECK(killed == 20);
}

TEST_CASE("faults: a full disk while a checkpoint is written leaves the previous one loadable; resume completes") {
  Reference& ref = reference();
  const std::string run = ref.dir.file("full_disk");
  const fs::path detect = fs::path(run) / "detect";
  // Start, and kill the program as soon as detect has its first checkpoint.
  const pid_t pid = train_start({"--config", ref.config, "--out", run, "--no-eval"}, ref.dir.file("disk.log"));
  while (!fs::exists(detect / "checkpoint.json")) {
    int status = 0;
    REQUIRE_MESSAGE(::waitpid(pid, &status, WNOHANG) == 0, "the run ended before its first checkpoint");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  const std::string pointer_before = file_read_all((detect / "checkpoint.json").string());

  // A file-size cap above every other file the stage writes but below a state file (Adam's
  // moments make it the largest): the next checkpoint's state file cannot be written.
  uintmax_t state_size = 0, other_max = 0;
  for (const auto& f : fs::directory_iterator(fs::path(ref.run) / "detect")) {
    const std::string n = f.path().filename().string();
    if (n.find(".state.") != std::string::npos) state_size = std::max(state_size, f.file_size());
    else other_max = std::max(other_max, f.file_size());
  }
  for (const char* f : {"log.txt", "config.json", "run.json", "split.json"})
    other_max = std::max(other_max, fs::file_size(fs::path(ref.run) / f) + 4096);  // room to grow
  REQUIRE_MESSAGE(other_max < state_size, "the state file is not the largest file: the cap cannot single it out");
  const pid_t capped = train_start({"--resume", "--out", run, "--no-eval"}, ref.dir.file("disk.log"), rlim_t(other_max + 1));
  const int rc = wait_exit(capped);
  const std::string err = file_read_all(ref.dir.file("disk.log"));
  CHECK_MESSAGE(rc == 1, err);
  CHECK_MESSAGE(err.find("cannot write") != std::string::npos, err);
  CHECK_MESSAGE(err.find(".state.safetensors") != std::string::npos, err);
  // The pointer still names the previous pair, and the failed write left no temporary file.
  CHECK(file_read_all((detect / "checkpoint.json").string()) == pointer_before);
  for (const auto& f : fs::directory_iterator(detect))
    CHECK_MESSAGE(f.path().filename().string().find(".tmp." + std::to_string(capped)) == std::string::npos, f.path());

  const int rc2 = wait_exit(train_start({"--resume", "--out", run, "--no-eval"}, ref.dir.file("disk.log")));
  REQUIRE_MESSAGE(rc2 == 0, file_read_all(ref.dir.file("disk.log")));
  for (const char* s : {"detect", "coarse", "refine"})
    CHECK_MESSAGE(weights_bytes(run, s) == weights_bytes(ref.run, s), s);
}
