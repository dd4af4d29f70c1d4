#include "train/data_parallel.h"

#include <cstdlib>

#include "base/error.h"

#ifdef DSV3_HAVE_MPI
#include <mpi.h>
#endif

namespace dsv3::train {
namespace {
int g_rank = 0, g_size = 1;
bool g_joined = false;

// mpirun (OpenMPI, MPICH, PMIx launchers) marks the processes it starts.
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}
}  // namespace

bool DataParallel::available() {
#ifdef DSV3_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void DataParallel::init() {
  if (g_joined || !launched_by_mpirun()) return;
#ifdef DSV3_HAVE_MPI
  MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_joined = true;
#else
  fail("this dsv3 was built without MPI (install libopenmpi-dev and rebuild) but was started by mpirun");
#endif
}

void DataParallel::finalize() {
#ifdef DSV3_HAVE_MPI
  if (g_joined) MPI_Finalize();
#endif
  g_joined = false;
  g_rank = 0;
  g_size = 1;
}

void DataParallel::abort(int code) {
#ifdef DSV3_HAVE_MPI
  if (g_joined && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

int DataParallel::rank() { return g_rank; }
int DataParallel::size() { return g_size; }

// MPI counts are int: reduce in chunks so tensors of any size work.
#ifdef DSV3_HAVE_MPI
template <class T>
static void reduce_chunks(T* data, int64_t n, MPI_Datatype type) {
  constexpr int64_t kChunk = int64_t(1) << 28;
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = n - i < kChunk ? n - i : kChunk;
    MPI_Allreduce(MPI_IN_PLACE, data + i, int(m), type, MPI_SUM, MPI_COMM_WORLD);
  }
}
#endif

void DataParallel::sum(float* data, int64_t n) {
#ifdef DSV3_HAVE_MPI
  if (g_size > 1) reduce_chunks(data, n, MPI_FLOAT);
#endif
  (void)data, (void)n;
}

void DataParallel::sum(double* data, int64_t n) {
#ifdef DSV3_HAVE_MPI
  if (g_size > 1) reduce_chunks(data, n, MPI_DOUBLE);
#endif
  (void)data, (void)n;
}

void DataParallel::sum(int64_t* data, int64_t n) {
#ifdef DSV3_HAVE_MPI
  if (g_size > 1) reduce_chunks(data, n, MPI_INT64_T);
#endif
  (void)data, (void)n;
}

void DataParallel::barrier() {
#ifdef DSV3_HAVE_MPI
  if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

}  // namespace dsv3::train
