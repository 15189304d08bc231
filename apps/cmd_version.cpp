// `spinemark version`: version, build type, CUDA yes/no, git revision and the other facts of
// this build that a bug report needs.
#include <Eigen/Core>
#include <cstdio>
#include <omp.h>

#include "apps/command.h"
#include "apps/omp_wait_policy.h"
#include "build_info.h"
#include "tensor/device_backend.h"
#include "tensor/kernels/context.h"
#include "tensor/kernels/dispatch.h"
#include "train/dist/communicator.h"
#include "train/dist/nccl_sum.h"

namespace {

void version_print() {
  const char* cuda = !sm::kernels::kCudaBuilt ? "no"
                     : sm::cuda_available()    ? "yes (GPU present)"
                                               : "yes (built; no usable GPU now)";
#ifdef SPINEMARK_DICOM
  const char* dicom = "yes (DCMTK)";
#else
  const char* dicom = "no";
#endif
  std::printf("spinemark %s\n", sm::build::version);
  std::printf("  git revision : %s\n", sm::build::git_revision);
  std::printf("  build type   : %s\n", sm::build::build_type);
  std::printf("  compiler     : %s\n", sm::build::compiler);
  std::printf("  CUDA         : %s\n", cuda);
  std::printf("  DICOM        : %s\n", dicom);
  const std::string mpi = sm::communicator_mpi_library();
  std::printf("  MPI          : %s\n", mpi.empty() ? "no (one process per run; install libopenmpi-dev and rebuild for mpirun)"
                                                   : ("yes, " + mpi + " (mpirun -np N spinemark train: docs/scaling.md)").c_str());
  const std::string nccl = sm::nccl_library();
  std::printf("  NCCL         : %s\n", nccl.empty() ? "no (GPU ranks need a CUDA build with NCCL and MPI)"
                                                    : ("yes, " + nccl + " (the GPU gradient sum; GPU training is not there yet)").c_str());
  std::printf("  Eigen        : %d.%d.%d\n", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
  std::printf("  CPU threads  : %d (OpenMP; set OMP_NUM_THREADS or --threads)\n", omp_get_max_threads());
  std::printf("  OpenMP wait  : %s (threads at a barrier; set OMP_WAIT_POLICY or GOMP_SPINCOUNT to override)\n",
              sm::app::omp_wait_policy_in_effect());
  std::printf("  CPU kernels  : %s (float32 conv GEMM, chosen at run time; SPINEMARK_CPU_KERNELS=portable|scalar|avx2|avx512)\n",
              sm::cpu_kernels_in_use());
}

void version_setup(CLI::App& root) {
  CLI::App* sub = root.add_subcommand("version", "Print the version, build type, CUDA support and git revision");
  sub->callback(version_print);
}

}  // namespace

SM_REGISTER_COMMAND(version, 0, version_setup);
