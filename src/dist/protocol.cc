#include "dist/protocol.h"

#include "base/error.h"

#ifdef DSV3_HAVE_MPI
#include <mpi.h>
#endif

namespace dsv3::dist::protocol {

void send_json(const nlohmann::json& j, int rank, int tag) {
#ifdef DSV3_HAVE_MPI
  const std::string s = j.dump();
  MPI_Send(s.data(), int(s.size()), MPI_CHAR, rank, tag, MPI_COMM_WORLD);
#else
  (void)j, (void)rank, (void)tag;
  fail("this dsv3 was built without MPI");
#endif
}

nlohmann::json recv_json(int rank, int tag) {
#ifdef DSV3_HAVE_MPI
  MPI_Status st;
  MPI_Probe(rank, tag, MPI_COMM_WORLD, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  std::string s(size_t(n), '\0');
  MPI_Recv(s.data(), n, MPI_CHAR, rank, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return nlohmann::json::parse(s);
#else
  (void)rank, (void)tag;
  fail("this dsv3 was built without MPI");
#endif
}

}  // namespace dsv3::dist::protocol
