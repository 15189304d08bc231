// spinemark: the one program. Parses the command line with CLI11 and hands over to the
// subcommand registered in apps/cmd_*.cpp.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <vector>

#include "apps/command.h"
#include "apps/omp_wait_policy.h"
#include "tensor/check.h"
#include "tensor/host_memory.h"

namespace sm::app {

namespace {
struct Registered {
  int order;
  CommandSetup setup;
};
std::vector<Registered>& registry() {
  static std::vector<Registered> r;
  return r;
}
int g_exit_code = 0;
}  // namespace

bool command_register(int order, CommandSetup setup) {
  registry().push_back({order, std::move(setup)});
  return true;
}
void command_set_exit_code(int code) { g_exit_code = code; }
int command_exit_code() { return g_exit_code; }

}  // namespace sm::app

int main(int argc, char** argv) {
  // Threads sleep at barriers instead of spinning (a restart of the program, once; see
  // apps/omp_wait_policy.h for why and the measurements).
  sm::app::omp_wait_policy_passive_by_default(argv);
  // A file-size limit (ulimit -f) must turn into a failed write that the writer reports and
  // cleans up after (file_write_atomic removes its temporary file), not into SIGXFSZ killing
  // the process with a *.tmp.<pid> file left behind. Process-wide, for every command.
  std::signal(SIGXFSZ, SIG_IGN);
  sm::host_memory_configure_for_reuse();  // tensors' storage reused across training steps
  CLI::App app{"spinemark: vertebral-corner localisation with 2-step DSNT, and spinal angles"};
  app.require_subcommand(1);
  auto& reg = sm::app::registry();
  std::stable_sort(reg.begin(), reg.end(), [](auto& a, auto& b) { return a.order < b.order; });
  for (auto& r : reg) r.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const sm::Error& e) {
    std::string cmd = app.get_subcommands().empty() ? "" : " " + app.get_subcommands()[0]->get_name();
    std::fprintf(stderr, "spinemark%s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spinemark: error: %s\n", e.what());
    return 1;
  }
  return sm::app::command_exit_code();
}
