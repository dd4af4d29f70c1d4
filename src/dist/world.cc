#include "dist/world.h"

#include <cstdlib>

#include "base/error.h"

#ifdef DSV3_HAVE_MPI
#include <mpi.h>
#endif

namespace dsv3::dist {
namespace {
int g_rank = 0, g_size = 1;
bool g_joined = false;
}  // namespace

bool World::launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

bool World::available() {
#ifdef DSV3_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void World::init() {
  if (g_joined || !launched_by_mpirun()) return;
#ifdef DSV3_HAVE_MPI
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  if (provided < MPI_THREAD_SERIALIZED) fail("this MPI library cannot be called from more than one thread");
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_joined = true;
#else
  fail("this dsv3 was built without MPI (install libopenmpi-dev and rebuild) but was started by mpirun");
#endif
}

void World::finalize() {
#ifdef DSV3_HAVE_MPI
  if (g_joined) MPI_Finalize();
#endif
  g_joined = false;
  g_rank = 0;
  g_size = 1;
}

void World::abort(int code) {
#ifdef DSV3_HAVE_MPI
  if (g_joined && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

int World::rank() { return g_rank; }
int World::size() { return g_size; }
bool World::joined() { return g_joined; }

int World::local_size() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MPI_LOCAL_NRANKS"})
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  return 1;
}

}  // namespace dsv3::dist
