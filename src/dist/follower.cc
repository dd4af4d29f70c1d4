// A follower rank of an expert-parallel job: loads only its routed experts when the leader
// loads a model, then computes them for the leader's MoE layers until the leader ends.
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "base/error.h"
#include "dist/expert_parallel.h"
#include "dist/protocol.h"
#include "dist/world.h"
#include "kernels/isa.h"
#include "model/moe.h"

#ifdef DSV3_HAVE_MPI
#include <mpi.h>
#endif

namespace dsv3::dist {

namespace {

// What a follower's loader binds: this rank's experts under the leader's placement.
class FollowerHost final : public model::ExpertHost {
 public:
  FollowerHost(ExpertPlacement p, int rank) : p_(std::move(p)), rank_(rank) {}
  bool holds(int64_t layer, int64_t expert) const override { return p_.holds(rank_, layer, expert); }
  std::vector<bool> place(int64_t, const std::vector<std::pair<int32_t, int64_t>>& used) override {
    return std::vector<bool>(used.size(), true);
  }
  void dispatch(int64_t, kernels::Numerics, const float*, int64_t, int64_t, const std::vector<model::ExpertRows>&) override {
    fail("a follower never dispatches");
  }
  void collect(float*, int64_t) override {}
  const ExpertPlacement& placement() const { return p_; }

 private:
  ExpertPlacement p_;
  int rank_;
};

struct Loaded {
  std::unique_ptr<model::Model> model;
  int64_t experts = 0;
};

#ifdef DSV3_HAVE_MPI
class Follower {
 public:
  int run() {
    for (;;) {
      MPI_Status st;
      MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
      if (st.MPI_TAG == protocol::kWork) {
        work(st);
        continue;
      }
      if (st.MPI_TAG != protocol::kControl) fail("unexpected message (tag ", st.MPI_TAG, ") from the leader");
      const nlohmann::json msg = protocol::recv_json(0, protocol::kControl);
      const std::string op = msg.value("op", "");
      if (op == "end") break;
      if (op == "load") {
        nlohmann::json reply = {{"ok", true}};
        try {
          load(msg);
        } catch (const std::exception& e) {
          reply = {{"ok", false}, {"error", e.what()}};
        }
        protocol::send_json(reply, 0, protocol::kReply);
      } else if (op == "stats") {
        const Loaded& m = model(msg.value("id", -1));
        RankMemory mem = protocol::measure_memory(m.model->weights(), m.experts);
        mem.busy_s = busy_s_;
        protocol::send_json(protocol::to_json(mem), 0, protocol::kReply);
      } else {
        fail("unknown control message '", op, "' from the leader");
      }
    }
    return 0;
  }

 private:
  void load(const nlohmann::json& msg) {
    const int id = msg.at("id").get<int>();
    const std::string dir = msg.at("dir").get<std::string>();
    const model::ModelConfig c = model::ModelConfig::load(dir + "/config.json");
    auto host = std::make_shared<FollowerHost>(
        ExpertPlacement::from_json(msg.at("placement"), c, World::size(), "the leader's placement"), World::rank());
    if (!pool_) {
      int threads = msg.value("threads", 0);
      if (threads <= 0) threads = std::max(1, int(std::thread::hardware_concurrency()) / World::local_size());
      pool_ = std::make_unique<ThreadPool>(threads);
      ws_ = std::make_unique<model::Workspace>(*pool_);
    }
    model::LoadOptions opts;
    opts.load_mtp = msg.value("mtp", true);
    opts.memory = msg.value("hugepages", false) ? io::WeightMemory::HugePages : io::WeightMemory::Map;
    opts.experts = host;
    opts.experts_only = true;
    Loaded l;
    l.model = std::make_unique<model::Model>(model::Model::load(dir, opts));
    l.experts = host->placement().held_by(World::rank(), opts.load_mtp ? INT64_MAX : c.num_hidden_layers);
    const model::ModelWeights& w = l.model->weights();
    const auto skip = [&w](const std::string& name) { return w.idle.count(name) > 0; };
    w.checkpoint->prefault(nullptr, skip);
    if (msg.value("recache", false) && !msg.value("hugepages", false) && w.checkpoint->huge_mapped_fraction(skip) < 0.99) {
      w.checkpoint->drop_cached_pages();  // as the leader's --recache: read again into 2 MB page-cache folios
      w.checkpoint->prefault(nullptr, skip);
    }
    models_[id] = std::move(l);
  }

  const Loaded& model(int id) const {
    const auto it = models_.find(id);
    if (it == models_.end()) fail("the leader asked for model ", id, ", which this rank has not loaded");
    return it->second;
  }

  void work(const MPI_Status& st) {
    int n = 0;
    MPI_Get_count(&st, MPI_INT64_T, &n);
    std::vector<int64_t> h(static_cast<size_t>(n));
    MPI_Recv(h.data(), n, MPI_INT64_T, 0, protocol::kWork, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (n < protocol::kHeaderFixed) fail("a work message from the leader is too short");
    const Loaded& m = model(int(h[0]));
    const int64_t layer = h[1], hidden = h[4], rows = h[5], n_experts = h[6];
    std::vector<model::ExpertRows> experts;
    size_t at = protocol::kHeaderFixed;
    int64_t slots = 0;
    for (int64_t i = 0; i < n_experts; ++i) {
      model::ExpertRows r;
      r.expert = int32_t(h.at(at++));
      const int64_t count = h.at(at++);
      r.slot0 = slots;
      r.tokens.assign(h.begin() + int64_t(at), h.begin() + int64_t(at + size_t(count)));
      at += size_t(count);
      slots += count;
      experts.push_back(std::move(r));
    }
    std::vector<float> x(size_t(rows * hidden));
    protocol::recv_floats(x.data(), int64_t(x.size()), 0, protocol::kRows);
    const auto t0 = std::chrono::steady_clock::now();  // busy: computing, not receiving
    const model::ModelConfig& c = m.model->config();
    const model::ModelWeights& w = m.model->weights();
    if (layer < 0 || layer > c.num_hidden_layers || (layer == c.num_hidden_layers && !w.mtp))
      fail("the leader asked for layer ", layer, ", which this rank has not loaded");
    const model::MoeWeights& moe = layer < c.num_hidden_layers ? w.layers[size_t(layer)].experts : w.mtp->block.experts;
    ws_->kernels.set_numerics(kernels::Numerics(h[2]));
    kernels::set_reference_kernels(h[3] != 0);
    out_.resize(size_t(slots * hidden));
    model::run_experts(*ws_, moe, x.data(), hidden, experts, out_.data());
    busy_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    protocol::send_floats(out_.data(), int64_t(out_.size()), 0, protocol::kResult);
  }

  std::map<int, Loaded> models_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<model::Workspace> ws_;
  std::vector<float> out_;
  double busy_s_ = 0;
};
#endif

}  // namespace

int follow() {
#ifdef DSV3_HAVE_MPI
  try {
    const int code = Follower().run();
    World::finalize();
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsv3: error (rank %d): %s\n", World::rank(), e.what());
    std::fflush(stderr);
    World::abort(1);
  }
#else
  fail("expert parallelism needs a dsv3 built with MPI");
#endif
}

}  // namespace dsv3::dist
