// A clean stop for long runs: SIGINT/SIGTERM set a flag that training loops poll between steps
// (they then checkpoint and return); a second Ctrl-C kills at once. SIGXFSZ is ignored so that
// a file-size limit turns into a write error with a message instead of a silent death.
#pragma once

namespace sm {

void stop_signals_install();
bool stop_requested();
void stop_request();        // as if a signal arrived (tests)
void stop_request_clear();

}  // namespace sm
