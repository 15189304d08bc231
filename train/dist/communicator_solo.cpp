// The single-process communicator (see communicator.h): one rank, every collective a no-op; and
// how a process tells that an MPI launcher started it.
#include <cstdlib>

#include "tensor/check.h"
#include "train/dist/communicator.h"

namespace sm {

namespace {

class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string kind() const override { return "single process"; }
  void sum(float*, int64_t) override {}   // Σ over one rank: the values themselves
  void sum(double*, int64_t) override {}
  void broadcast(void*, int64_t) override {}
  void barrier() override {}
  int vote_max(int code) override { return code; }
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

}  // namespace

std::unique_ptr<Communicator> communicator_solo() { return std::make_unique<SoloCommunicator>(); }

// Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH/Hydra and Slurm's PMI2 set PMI_SIZE; a
// PMIx launcher (srun --mpi=pmix, prterun) sets PMIX_RANK.
bool communicator_launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

int communicator_local_rank(const Communicator& comm) {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"})
    if (const char* value = std::getenv(v)) {
      char* end = nullptr;
      const long r = std::strtol(value, &end, 10);
      if (end != value && *end == '\0' && r >= 0 && r < 1 << 20) return int(r);
    }
  return comm.rank();
}

}  // namespace sm
