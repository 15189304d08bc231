// Stop flag set from signal handlers (see stop_signal.h).
#include "train/run/stop_signal.h"

#include <atomic>
#include <csignal>

namespace sm {

namespace {
std::atomic<bool> g_stop{false};  // lock-free, so safe to set from a signal handler

extern "C" void stop_handler(int sig) {
  g_stop.store(true);
  std::signal(sig, SIG_DFL);  // the second signal ends the process the usual way
}
}  // namespace

void stop_signals_install() {
  std::signal(SIGINT, stop_handler);
  std::signal(SIGTERM, stop_handler);
  std::signal(SIGXFSZ, SIG_IGN);
}
bool stop_requested() { return g_stop.load(); }
void stop_request() { g_stop.store(true); }
void stop_request_clear() { g_stop.store(false); }

}  // namespace sm
