// The processes of a data-parallel run and what they say to each other (llm.c's
// multi_gpu_config, Horovod): rank and size, a sum of a buffer over the ranks in a FIXED order,
// a broadcast from rank 0, a barrier, and a vote. Two implementations: one process
// (communicator_solo.cpp: every call is a no-op) and MPI (communicator_mpi.cpp, compiled where
// CMake finds MPI). docs/scaling.md says what one training step sends.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace sm {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size − 1; rank 0 writes the run's files
  virtual int size() const = 0;
  virtual std::string kind() const = 0;  // "single process", "MPI"

  // values[i] ← Σ_r values_r[i], summed in rank order 0, 1, …, N−1 in double precision whatever
  // N and the transport: the same inputs give bit-identical sums on every run, on every rank.
  // Every rank calls it with the same n (a collective).
  virtual void sum(float* values, int64_t n) = 0;
  virtual void sum(double* values, int64_t n) = 0;
  // values ← rank 0's values on every rank (bytes).
  virtual void broadcast(void* bytes, int64_t n) = 0;
  virtual void barrier() = 0;
  // The stop vote of each step: returns max over the ranks of `code` (0: go on). Any rank that
  // wants to stop (Ctrl-C, its clock, a fault test) stops every rank after the same step.
  virtual int vote_max(int code) = 0;
  // Ends every rank now with exit code `code` (MPI_Abort): what an error on one rank must do,
  // since the others would wait for it forever in the next collective.
  [[noreturn]] virtual void abort(int code) = 0;
};

// One process, no communication (the default run, and tests).
std::unique_ptr<Communicator> communicator_solo();

// MPI when this process was started by an MPI launcher (mpirun, srun with PMI/PMIx; seen in the
// environment) and MPI is compiled in; else the single process. Initialises MPI; the object's
// destruction finalises it. Call once per process.
std::unique_ptr<Communicator> communicator_from_environment();

// Whether this build has MPI ("Open MPI 4.1.4" etc.), for `spinemark version`; "" when not.
std::string communicator_mpi_library();
// This process's index among the ranks on its node (the launcher's OMPI_COMM_WORLD_LOCAL_RANK,
// SLURM_LOCALID, MPI_LOCALRANKID or PMI_LOCAL_RANK), to pick its GPU; comm.rank() when none is set.
int communicator_local_rank(const Communicator& comm);
// True when the environment says an MPI launcher started this process.
bool communicator_launched_by_mpi();

}  // namespace sm
