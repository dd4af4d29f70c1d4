#include "train/data_parallel.h"

#include <cstdlib>

#include "base/error.h"
#include "dist/world.h"

#ifdef DSV3_HAVE_MPI
#include <mpi.h>
#endif

namespace dsv3::train {

bool DataParallel::available() { return dist::World::available(); }
void DataParallel::init() { dist::World::init(); }
void DataParallel::finalize() { dist::World::finalize(); }
void DataParallel::abort(int code) { dist::World::abort(code); }
int DataParallel::rank() { return dist::World::rank(); }
int DataParallel::size() { return dist::World::size(); }

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
  if (size() > 1) reduce_chunks(data, n, MPI_FLOAT);
#endif
  (void)data, (void)n;
}

void DataParallel::sum(double* data, int64_t n) {
#ifdef DSV3_HAVE_MPI
  if (size() > 1) reduce_chunks(data, n, MPI_DOUBLE);
#endif
  (void)data, (void)n;
}

void DataParallel::sum(int64_t* data, int64_t n) {
#ifdef DSV3_HAVE_MPI
  if (size() > 1) reduce_chunks(data, n, MPI_INT64_T);
#endif
  (void)data, (void)n;
}

void DataParallel::barrier() {
#ifdef DSV3_HAVE_MPI
  if (size() > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

}  // namespace dsv3::train
