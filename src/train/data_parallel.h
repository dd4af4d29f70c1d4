// Data parallelism over processes with MPI (OpenMPI): `mpirun -np N dsv3 train ...` runs N
// ranks that each compute their share of every step's sequences; gradients, loss terms and
// expert loads are summed across ranks before the optimizer step, so every rank applies the
// same update and the run follows the same loss curve as one process at the same global
// batch. Without mpirun (or in a build without MPI) there is one rank and every call is a
// no-op. The rank/size split is by sequence, which leaves room for expert parallelism later
// (experts would be split across ranks the same way sequences are here).
#pragma once

#include <cstdint>

namespace dsv3::train {

class DataParallel {
 public:
  //! Joins the MPI job when this process was started by mpirun (and the build has MPI);
  //! otherwise stays a single rank. Call once, before any other use.
  static void init();
  //! Leaves the MPI job (after init()).
  static void finalize();
  //! Ends every rank when one fails, so the others do not wait forever in a reduction.
  [[noreturn]] static void abort(int code);

  static int rank();
  static int size();
  static bool is_root() { return rank() == 0; }
  static bool available();  //!< built with MPI

  //! In-place sums over all ranks (no-ops with one rank).
  static void sum(float* data, int64_t n);
  static void sum(double* data, int64_t n);
  static void sum(int64_t* data, int64_t n);
  static void barrier();
};

}  // namespace dsv3::train
