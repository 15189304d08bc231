// The MPI communicator (see communicator.h). Compiled with SPINEMARK_MPI where CMake finds MPI
// (find_package(MPI COMPONENTS C)); without it, communicator_from_environment() gives the single
// process and refuses to run as one of several ranks.
//
// The fixed-order sum is a reduce-scatter followed by an allgather, the two halves of a ring
// allreduce, built from MPI_Alltoallv and MPI_Allgatherv so that the ORDER of the additions is
// ours: the buffer is cut into N contiguous chunks, rank k receives chunk k from every rank and
// adds the N copies in rank order 0..N−1 (in double), then every rank gathers every summed
// chunk. Each rank sends (N−1)/N of the buffer in each half: 2(N−1)/N × bytes, what a ring
// allreduce sends (docs/scaling.md), and the result does not depend on MPI's choice of reduction
// algorithm (MPI_Allreduce promises no order).
#include "train/dist/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "tensor/check.h"

#ifdef SPINEMARK_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: Open MPI's deprecated C++ bindings need libmpi_cxx
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace sm {

namespace {

// The number of ranks the launcher asked for (0 when none says).
[[maybe_unused]] int launcher_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* s = std::getenv(v)) return std::atoi(s);
  return 0;
}

#ifdef SPINEMARK_MPI

#define SM_MPI_CHECK(call) SM_CHECK((call) == MPI_SUCCESS, "MPI: " #call " failed")

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    // A rank waiting in a collective yields its core instead of spinning on it (Open MPI; the
    // user's own setting wins). On a shared or oversubscribed machine a spinning rank takes the
    // core from the rank it waits for: 2 ranks on this 2-core host trained at 0.64× one
    // 2-thread process with spinning, 0.9–1.0× with yielding (docs/scaling.md). The same
    // reason as OpenMP's passive wait policy (apps/omp_wait_policy.h).
    ::setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided = 0;
    // Only the main thread calls MPI (the loader's threads and OpenMP's never do).
    SM_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    SM_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    SM_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  }
  ~MpiCommunicator() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string kind() const override { return "MPI"; }
  void sum(float* v, int64_t n) override { sum_fixed_order(v, n, MPI_FLOAT); }
  void sum(double* v, int64_t n) override { sum_fixed_order(v, n, MPI_DOUBLE); }

  void broadcast(void* bytes, int64_t n) override {
    constexpr int64_t kPiece = 1 << 30;  // MPI counts are int
    for (int64_t at = 0; at < n; at += kPiece)
      SM_MPI_CHECK(MPI_Bcast(static_cast<char*>(bytes) + at, int(std::min(kPiece, n - at)), MPI_BYTE, 0, MPI_COMM_WORLD));
  }
  void barrier() override { SM_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }
  int vote_max(int code) override {
    int out = 0;  // integer max: exact, order does not matter
    SM_MPI_CHECK(MPI_Allreduce(&code, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return out;
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);  // not reached: MPI_Abort ends the job
  }

 private:
  // values (n) ← Σ_r values_r in rank order; see the file's header for the two halves.
  template <class T> void sum_fixed_order(T* values, int64_t n, MPI_Datatype type) {
    if (size_ == 1 || n == 0) return;
    const int64_t ranks = size_;
    SM_CHECK(n / ranks < (int64_t(1) << 31) - 1, "MPI sum: " << n << " values are too many for one call");
    std::vector<int> count(static_cast<size_t>(ranks)), first(static_cast<size_t>(ranks));  // chunk k: [first[k], first[k] + count[k])
    for (int64_t k = 0; k < ranks; ++k) {
      first[size_t(k)] = int(n * k / ranks);
      count[size_t(k)] = int(n * (k + 1) / ranks - n * k / ranks);
    }
    const int mine = count[size_t(rank_)];
    // Reduce-scatter: rank k gets chunk k of every rank, stacked in rank order (ranks × mine).
    std::vector<T> stacked(size_t(ranks) * size_t(mine));
    std::vector<int> recv_count(static_cast<size_t>(ranks), mine), recv_first(static_cast<size_t>(ranks));
    for (int64_t k = 0; k < ranks; ++k) recv_first[size_t(k)] = int(k) * mine;
    SM_MPI_CHECK(MPI_Alltoallv(values, count.data(), first.data(), type, stacked.data(), recv_count.data(),
                               recv_first.data(), type, MPI_COMM_WORLD));
    T* out = values + first[size_t(rank_)];
    for (int i = 0; i < mine; ++i) {
      double s = 0;
      for (int64_t k = 0; k < ranks; ++k) s += double(stacked[size_t(k) * size_t(mine) + size_t(i)]);
      out[i] = T(s);
    }
    // Allgather: every rank receives every summed chunk in place.
    SM_MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, type, values, count.data(), first.data(), type, MPI_COMM_WORLD));
  }

  int rank_ = 0, size_ = 1;
};

#endif  // SPINEMARK_MPI

}  // namespace

std::unique_ptr<Communicator> communicator_from_environment() {
#ifdef SPINEMARK_MPI
  if (communicator_launched_by_mpi()) return std::make_unique<MpiCommunicator>();
#else
  SM_CHECK(launcher_size() <= 1, "this process is one of " << launcher_size() << " MPI ranks, but this build of spinemark has no "
                                     "MPI (spinemark version says so): install libopenmpi-dev and rebuild, or run one process");
#endif
  return communicator_solo();
}

std::string communicator_mpi_library() {
#ifdef SPINEMARK_MPI
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);  // callable before MPI_Init
  std::string s(text, size_t(length));
  const size_t cut = s.find_first_of(",\n");
  return cut == std::string::npos ? s : s.substr(0, cut);
#else
  return "";
#endif
}

}  // namespace sm
