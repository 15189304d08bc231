// The OpenMP wait policy of the spinemark program: threads that reach a barrier first sleep
// (passive) instead of spinning, unless the user chose a policy. Why: with libgomp's default
// (spin up to 300,000 iterations before sleeping) a 2-thread run beside one other CPU-bound
// process collapsed: 2.43–2.58× slower per training step and 2.98–3.00× per batch-1 inference
// (two runs), against 1.72–1.95× and 1.63–1.64× with passive waits (the fair share of 2 cores
// among 3 threads is 1.5×); alone, passive cost training 0–3 % and batch-1 inference 7–28 %.
// bench/contention.sh measures it, docs/performance.md has the table.
#pragma once

namespace sm::app {

// libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main), so this sets
// OMP_WAIT_POLICY=passive and restarts the program once (execv of /proc/self/exe with the same
// arguments) when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set. Returns only when no
// restart was needed or the restart failed (then the run goes on under libgomp's default).
void omp_wait_policy_passive_by_default(char** argv);

// The policy in effect: the environment's OMP_WAIT_POLICY, "spincount=<n>" for GOMP_SPINCOUNT,
// or "default".
const char* omp_wait_policy_in_effect();

}  // namespace sm::app
