#include "dist/expert_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "base/error.h"
#include "dist/protocol.h"
#include "dist/world.h"
#include "kernels/isa.h"

namespace dsv3::dist {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The hosts of the models this leader loaded (their loads are saved at the end).
std::vector<std::shared_ptr<LeaderHost>>& hosts() {
  static std::vector<std::shared_ptr<LeaderHost>> h;
  return h;
}


}  // namespace

bool expert_parallel_command(const std::string& command) {
  for (const char* c : {"generate", "chat", "serve", "bench", "logits", "eval"})
    if (command == c) return true;
  return false;
}

// ---- Leader --------------------------------------------------------------------------------

LeaderHost::LeaderHost(int model_id, ExpertPlacement placement) : id_(model_id), placement_(std::move(placement)) {
  for (int64_t l : placement_.layers()) loads_.tokens[l].assign(size_t(placement_.experts()), 0);
}

bool LeaderHost::holds(int64_t layer, int64_t expert) const { return placement_.holds(0, layer, expert); }

std::vector<bool> LeaderHost::place(int64_t layer, const std::vector<std::pair<int32_t, int64_t>>& used) {
  std::vector<uint64_t>& load = loads_.tokens[layer];
  if (load.size() != size_t(placement_.experts())) load.assign(size_t(placement_.experts()), 0);
  // An expert with copies runs all of this step's tokens on one of them (so it computes
  // over exactly the rows it would in one process): the one with the fewest rows so far.
  std::vector<int64_t> rows(size_t(placement_.ranks()), 0);
  chosen_.assign(used.size(), 0);
  std::vector<bool> here(used.size());
  for (size_t i = 0; i < used.size(); ++i) {
    const auto& [e, n] = used[i];
    load[size_t(e)] += uint64_t(n);
    const std::vector<int>& h = placement_.holders(layer, e);
    if (h.empty()) fail("expert ", e, " of layer ", layer, " is held by no rank");
    int best = h[0];
    for (int r : h)
      if (rows[size_t(r)] < rows[size_t(best)]) best = r;
    rows[size_t(best)] += n;
    chosen_[i] = best;
    here[i] = best == 0;
  }
  return here;
}

void LeaderHost::dispatch(int64_t layer, kernels::Numerics numerics, const float* x, int64_t T, int64_t hidden,
                          const std::vector<model::ExpertRows>& remote) {
  try {
    dispatch_all(layer, numerics, x, T, hidden, remote);
  } catch (const std::exception& e) {
    // Some followers may hold work whose answer nobody will collect: the job cannot go on.
    std::fprintf(stderr, "dsv3: error (rank 0) while sending a MoE layer's work: %s\n", e.what());
    World::abort(1);
  }
}

void LeaderHost::dispatch_all(int64_t layer, kernels::Numerics numerics, const float* x, int64_t T, int64_t hidden,
                              const std::vector<model::ExpertRows>& remote) {
  const auto t0 = Clock::now();
  // The remote experts in place() order, each with the rank place() chose.
  std::vector<std::pair<int, const model::ExpertRows*>> work;
  {
    size_t j = 0;
    for (const model::ExpertRows& r : remote) {
      // place() saw every used expert ascending; remote is the subsequence it sent away.
      while (j < chosen_.size() && chosen_[j] == 0) ++j;
      if (j >= chosen_.size()) fail("expert parallelism: dispatch does not match the last placement");
      work.emplace_back(chosen_[j++], &r);
    }
  }
  pending_.clear();
  std::vector<int64_t> row_of(static_cast<size_t>(T));
  for (int rank = 1; rank < placement_.ranks(); ++rank) {
    std::vector<const model::ExpertRows*> mine;
    for (const auto& [r, e] : work)
      if (r == rank) mine.push_back(e);
    if (mine.empty()) continue;
    // Each token's row travels once, however many of this rank's experts it chose.
    std::vector<int64_t> tokens;
    for (const model::ExpertRows* e : mine) tokens.insert(tokens.end(), e->tokens.begin(), e->tokens.end());
    std::sort(tokens.begin(), tokens.end());
    tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
    for (size_t i = 0; i < tokens.size(); ++i) row_of[size_t(tokens[i])] = int64_t(i);
    std::vector<int64_t> header{id_, layer, int64_t(numerics), kernels::reference_kernels() ? 1 : 0, hidden,
                                int64_t(tokens.size()), int64_t(mine.size())};
    Pending p{rank, {}, {}};
    int64_t slots = 0;
    for (const model::ExpertRows* e : mine) {
      header.push_back(e->expert);
      header.push_back(int64_t(e->tokens.size()));
      for (int64_t t : e->tokens) header.push_back(row_of[size_t(t)]);
      p.slots.emplace_back(e->slot0, int64_t(e->tokens.size()));
      slots += int64_t(e->tokens.size());
    }
    std::vector<float> rows(tokens.size() * size_t(hidden));
    for (size_t i = 0; i < tokens.size(); ++i)
      std::copy(x + tokens[i] * hidden, x + (tokens[i] + 1) * hidden, &rows[i * size_t(hidden)]);
    protocol::send_int64s(header, rank, protocol::kWork);
    protocol::send_floats(rows.data(), int64_t(rows.size()), rank, protocol::kRows);
    traffic_.bytes_sent += header.size() * 8 + rows.size() * 4;
    traffic_.messages += 2;
    p.out.resize(size_t(slots * hidden));
    pending_.push_back(std::move(p));
  }
  ++traffic_.layer_calls;
  traffic_.send_s += since(t0);
}

void LeaderHost::collect(float* ye, int64_t hidden) {
  const auto t0 = Clock::now();
  for (Pending& p : pending_) {
    protocol::recv_floats(p.out.data(), int64_t(p.out.size()), p.rank, protocol::kResult);
    traffic_.bytes_received += p.out.size() * 4;
    ++traffic_.messages;
    const float* src = p.out.data();
    for (const auto& [slot0, n] : p.slots) {
      std::copy(src, src + n * hidden, ye + slot0 * hidden);
      src += n * hidden;
    }
  }
  pending_.clear();
  traffic_.wait_s += since(t0);
}

std::vector<std::pair<std::string, double>> LeaderHost::counters() const {
  return {{"ranks", double(placement_.ranks())},
          {"bytes_sent_total", double(traffic_.bytes_sent)},
          {"bytes_received_total", double(traffic_.bytes_received)},
          {"messages_total", double(traffic_.messages)},
          {"remote_layer_calls_total", double(traffic_.layer_calls)},
          {"send_seconds_total", traffic_.send_s},
          {"wait_seconds_total", traffic_.wait_s}};
}

LeaderHost* leader_host(const model::Model& m) { return dynamic_cast<LeaderHost*>(m.expert_host()); }

model::Model load_model(const std::string& dir, model::LoadOptions opts, const EpOptions& ep, bool recache) {
  namespace fs = std::filesystem;
  const int ranks = World::size();
  const bool record = !ep.save_expert_loads.empty();
  if (ranks <= 1 && !record) {
    if (!ep.expert_map.empty() || ep.redundant > 0)
      std::fprintf(stderr, "dsv3: note: --expert-map and --redundant-experts only matter under mpirun -np N > 1\n");
    return model::Model::load(dir, opts);
  }
  if (!fs::exists(fs::path(dir) / "config.json")) return model::Model::load(dir, opts);  // its own clear error
  const model::ModelConfig c = model::ModelConfig::load((fs::path(dir) / "config.json").string());
  if (c.n_routed_experts == 0 && ranks > 1)
    fail(dir, " has no routed experts: expert parallelism (mpirun -np ", ranks, ") has nothing to split");
  ExpertPlacement placement =
      ep.expert_map.empty() ? ExpertPlacement::contiguous(c, ranks) : ExpertPlacement::from_file(ep.expert_map, c, ranks);
  if (ep.redundant > 0) {
    if (ep.expert_loads.empty())
      fail("--redundant-experts needs --expert-loads FILE (written by --save-expert-loads on a run over a prompt set)");
    placement.add_redundant(ExpertLoads::load(ep.expert_loads), ep.redundant);
  }
  auto host = std::make_shared<LeaderHost>(int(hosts().size()), placement);
  if (ranks > 1) {
    const nlohmann::json msg = {{"op", "load"},
                                {"id", host->model_id()},
                                {"dir", fs::absolute(dir).string()},
                                {"mtp", opts.load_mtp},
                                {"hugepages", opts.memory == io::WeightMemory::HugePages},
                                {"recache", recache},
                                {"threads", ep.threads},
                                {"placement", placement.to_json()}};
    for (int r = 1; r < ranks; ++r) protocol::send_json(msg, r, protocol::kControl);
  }
  opts.experts = host;
  model::Model m = model::Model::load(dir, opts);
  for (int r = 1; r < ranks; ++r) {
    const nlohmann::json reply = protocol::recv_json(r, protocol::kReply);
    if (!reply.value("ok", false)) fail("rank ", r, " could not load its experts: ", reply.value("error", "(no reason)"));
  }
  hosts().push_back(host);
  return m;
}

std::vector<RankMemory> rank_memory(const model::Model& m) {
  std::vector<RankMemory> out;
  LeaderHost* host = leader_host(m);
  const int64_t below = m.has_mtp() ? INT64_MAX : m.config().num_hidden_layers;  // the layers loaded
  int64_t experts = 0;
  if (host) {
    experts = host->placement().held_by(0, below);
  } else {
    for (int64_t l : ExpertPlacement::moe_layers(m.config()))
      if (l < below) experts += m.config().n_routed_experts;
  }
  out.push_back(protocol::measure_memory(m.weights(), experts));
  if (!host) return out;
  for (int r = 1; r < World::size(); ++r) {
    protocol::send_json({{"op", "stats"}, {"id", host->model_id()}}, r, protocol::kControl);
    out.push_back(protocol::rank_memory_from_json(protocol::recv_json(r, protocol::kReply), r));
  }
  return out;
}

void finish(const EpOptions& ep) {
  static std::once_flag once;
  std::call_once(once, [&] {
    // What the command printed must reach mpirun before the job winds down.
    std::fflush(nullptr);
    if (!ep.save_expert_loads.empty() && !hosts().empty()) {
      ExpertLoads all;
      for (const auto& h : hosts())
        for (const auto& [l, t] : h->loads().tokens) {
          std::vector<uint64_t>& a = all.tokens[l];
          if (a.size() < t.size()) a.resize(t.size(), 0);
          for (size_t e = 0; e < t.size(); ++e) a[e] += t[e];
        }
      all.save(ep.save_expert_loads);
    }
    if (!ep.save_expert_loads.empty() && hosts().empty())
      std::fprintf(stderr, "dsv3: note: --save-expert-loads: this command loaded no model; nothing written\n");
    if (World::joined() && World::rank() == 0)
      for (int r = 1; r < World::size(); ++r) protocol::send_json({{"op", "end"}}, r, protocol::kControl);
    hosts().clear();
    World::finalize();
  });
}

}  // namespace dsv3::dist
