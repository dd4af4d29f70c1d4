#include "dist/protocol.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "base/error.h"

#ifdef DSV3_HAVE_MPI
#include <mpi.h>
#endif

namespace dsv3::dist::protocol {

#ifdef DSV3_HAVE_MPI
namespace {
constexpr int64_t kChunk = int64_t(1) << 28;
}  // namespace

void send_int64s(const std::vector<int64_t>& v, int rank, int tag) {
  MPI_Send(v.data(), int(v.size()), MPI_INT64_T, rank, tag, MPI_COMM_WORLD);
}

void send_floats(const float* p, int64_t n, int rank, int tag) {
  int64_t i = 0;
  do {  // an empty message too, so the receiver's count of messages holds
    MPI_Send(p + i, int(std::min(kChunk, n - i)), MPI_FLOAT, rank, tag, MPI_COMM_WORLD);
    i += kChunk;
  } while (i < n);
}

void recv_floats(float* p, int64_t n, int rank, int tag) {
  int64_t i = 0;
  do {
    MPI_Recv(p + i, int(std::min(kChunk, n - i)), MPI_FLOAT, rank, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    i += kChunk;
  } while (i < n);
}
#else
void send_int64s(const std::vector<int64_t>&, int, int) { fail("this dsv3 was built without MPI"); }
void send_floats(const float*, int64_t, int, int) { fail("this dsv3 was built without MPI"); }
void recv_floats(float*, int64_t, int, int) { fail("this dsv3 was built without MPI"); }
#endif

RankMemory measure_memory(const model::ModelWeights& w, int64_t experts) {
  RankMemory m;
  m.experts = experts;
  for (uint64_t b : w.bytes_by_dtype) m.weight_bytes += b;
  m.weights_resident = w.checkpoint->resident_bytes();
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) m.resident_bytes = uint64_t(std::strtoull(line.c_str() + 6, nullptr, 10)) * 1024;
  return m;
}

nlohmann::json to_json(const RankMemory& m) {
  return {{"experts", m.experts},
          {"weight_bytes", m.weight_bytes},
          {"weights_resident", m.weights_resident},
          {"resident_bytes", m.resident_bytes},
          {"busy_s", m.busy_s}};
}

RankMemory rank_memory_from_json(const nlohmann::json& j, int rank) {
  RankMemory m;
  m.rank = rank;
  m.experts = j.value("experts", int64_t(0));
  m.weight_bytes = j.value("weight_bytes", uint64_t(0));
  m.weights_resident = j.value("weights_resident", uint64_t(0));
  m.resident_bytes = j.value("resident_bytes", uint64_t(0));
  m.busy_s = j.value("busy_s", 0.0);
  return m;
}

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
