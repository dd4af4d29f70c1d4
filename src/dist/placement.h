// Which ranks hold which routed experts (expert parallelism). Default: contiguous ranges,
// rank r holding experts [r*E/N, (r+1)*E/N) of every MoE layer, which with DeepSeek's
// group-limited routing keeps a token's experts on few ranks when the ranks divide the
// groups. `--expert-map FILE` gives any other placement; redundant copies of the most-loaded
// experts (the report's "redundant experts") go on the least-loaded ranks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace dsv3::dist {

//! Tokens routed to each expert of each MoE layer over some run: what `--save-expert-loads`
//! writes and `--redundant-experts` reads. JSON: {"layers": {"3": [n0, n1, ...], ...}}.
struct ExpertLoads {
  std::map<int64_t, std::vector<uint64_t>> tokens;
  static ExpertLoads load(const std::string& path);
  void save(const std::string& path) const;
};

class ExpertPlacement {
 public:
  //! The MoE layers of `c` (the MTP block's included: num_hidden_layers + m).
  static std::vector<int64_t> moe_layers(const model::ModelConfig& c);
  static ExpertPlacement contiguous(const model::ModelConfig& c, int ranks);
  //! From an `--expert-map` file: {"experts": [r, ...]} for every MoE layer and/or
  //! {"layers": {"L": [r, ...]}} per layer; each entry a rank or a list of ranks (copies).
  //! Layers the file does not name are contiguous. Throws dsv3::Error naming what is wrong.
  static ExpertPlacement from_file(const std::string& path, const model::ModelConfig& c, int ranks);
  static ExpertPlacement from_json(const nlohmann::json& j, const model::ModelConfig& c, int ranks,
                                   const std::string& where = "placement");
  //! Every layer's ranks per expert, in the from_json format (layers spelled out).
  nlohmann::json to_json() const;

  //! Adds one copy of each layer's `per_layer` most-loaded experts on the rank whose
  //! expected load (its experts' loads, a copied expert's shared equally) is lowest among
  //! those that do not hold it yet.
  void add_redundant(const ExpertLoads& loads, int per_layer);

  int ranks() const { return ranks_; }
  int64_t experts() const { return experts_; }
  const std::vector<int64_t>& layers() const { return layers_; }
  //! Ranks holding expert e of `layer`, ascending; empty for a layer that is not MoE.
  const std::vector<int>& holders(int64_t layer, int64_t e) const;
  bool holds(int rank, int64_t layer, int64_t e) const;
  //! Experts held by `rank` over the layers below `below_layer` (copies included).
  int64_t held_by(int rank, int64_t below_layer = INT64_MAX) const;

 private:
  int ranks_ = 1;
  int64_t experts_ = 0;
  std::vector<int64_t> layers_;
  std::map<int64_t, std::vector<std::vector<int>>> holders_;  // layer -> expert -> ranks
};

}  // namespace dsv3::dist
