// The MPI job this process belongs to (OpenMPI from Debian): one place that joins it, names
// the ranks and ends it. Training's data parallelism and inference's expert parallelism both
// run on it. Without mpirun (or in a build without MPI) there is one rank and every call is
// a no-op.
#pragma once

namespace dsv3::dist {

class World {
 public:
  //! Whether mpirun (OpenMPI, MPICH, PMIx launchers) started this process.
  static bool launched_by_mpirun();
  //! Joins the job when launched by mpirun (threads serialized: the serving engine's thread
  //! may talk to the other ranks). Idempotent.
  static void init();
  //! Leaves the job (after init()).
  static void finalize();
  //! Ends every rank when one fails, so the others do not wait forever for it.
  [[noreturn]] static void abort(int code);

  static int rank();
  static int size();
  //! Ranks of this job on this machine (1 without mpirun): the default thread count
  //! divides the cores among them.
  static int local_size();
  static bool joined();
  static bool available();  //!< built with MPI
};

}  // namespace dsv3::dist
