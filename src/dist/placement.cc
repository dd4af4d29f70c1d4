#include "dist/placement.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>

#include "base/error.h"

namespace dsv3::dist {

using nlohmann::json;

namespace {

json read_json(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) fail(path, ": cannot open the ", what);
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    fail(path, ": the ", what, " is not JSON: ", e.what());
  }
}

}  // namespace

ExpertLoads ExpertLoads::load(const std::string& path) {
  const json j = read_json(path, "expert loads file");
  if (!j.is_object() || !j.contains("layers") || !j["layers"].is_object())
    fail(path, ": expected {\"layers\": {\"<layer>\": [tokens per expert, ...]}}");
  ExpertLoads out;
  for (const auto& [k, v] : j["layers"].items()) {
    char* end = nullptr;
    const long long layer = std::strtoll(k.c_str(), &end, 10);
    if (k.empty() || *end || layer < 0) fail(path, ": layer key '", k, "' is not a layer index");
    if (!v.is_array()) fail(path, ": layer ", k, ": expected an array of token counts");
    std::vector<uint64_t>& t = out.tokens[layer];
    for (const json& n : v) {
      if (!n.is_number_unsigned() && !(n.is_number_integer() && n.get<int64_t>() >= 0))
        fail(path, ": layer ", k, ": token counts must be non-negative integers");
      t.push_back(n.get<uint64_t>());
    }
  }
  return out;
}

void ExpertLoads::save(const std::string& path) const {
  json layers = json::object();
  for (const auto& [layer, t] : tokens) layers[std::to_string(layer)] = t;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) fail(path, ": cannot write the expert loads file");
    f << json{{"layers", layers}}.dump() << "\n";
    if (!f) fail(path, ": cannot write the expert loads file");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(path, ": cannot rename ", tmp, " into place");
}

std::vector<int64_t> ExpertPlacement::moe_layers(const model::ModelConfig& c) {
  std::vector<int64_t> out;
  for (int64_t l = 0; l < c.num_hidden_layers + c.num_nextn_predict_layers; ++l)
    if (c.is_moe_layer(l)) out.push_back(l);
  return out;
}

ExpertPlacement ExpertPlacement::contiguous(const model::ModelConfig& c, int ranks) {
  if (ranks < 1) fail("expert placement over ", ranks, " ranks");
  ExpertPlacement p;
  p.ranks_ = ranks;
  p.experts_ = c.n_routed_experts;
  p.layers_ = moe_layers(c);
  std::vector<std::vector<int>> per(size_t(p.experts_));
  for (int64_t e = 0; e < p.experts_; ++e) per[size_t(e)] = {int(e * ranks / std::max<int64_t>(p.experts_, 1))};
  for (int64_t l : p.layers_) p.holders_[l] = per;
  return p;
}

ExpertPlacement ExpertPlacement::from_file(const std::string& path, const model::ModelConfig& c, int ranks) {
  return from_json(read_json(path, "expert map"), c, ranks, path);
}

ExpertPlacement ExpertPlacement::from_json(const json& j, const model::ModelConfig& c, int ranks,
                                           const std::string& where) {
  ExpertPlacement p = contiguous(c, ranks);
  if (!j.is_object()) fail(where, ": expected a JSON object with \"experts\" and/or \"layers\"");
  for (const auto& [k, v] : j.items())
    if (k != "experts" && k != "layers" && k != "ranks") fail(where, ": unknown key '", k, "'");
  if (j.contains("ranks") && (!j["ranks"].is_number_integer() || j["ranks"].get<int64_t>() != ranks))
    fail(where, ": written for ", j["ranks"].dump(), " ranks, but this job has ", ranks);
  auto parse = [&](const json& list, const std::string& what) {
    if (!list.is_array() || int64_t(list.size()) != p.experts_)
      fail(where, ": ", what, " must list all ", p.experts_, " routed experts (a rank or a list of ranks each)");
    std::vector<std::vector<int>> out;
    for (size_t e = 0; e < list.size(); ++e) {
      std::vector<int> rs;
      const json& item = list[e];
      for (const json& r : item.is_array() ? item : json::array({item})) {
        if (!r.is_number_integer() || r.get<int64_t>() < 0 || r.get<int64_t>() >= ranks)
          fail(where, ": ", what, ", expert ", e, ": ", r.dump(), " is not a rank of this job (0..", ranks - 1, ")");
        rs.push_back(r.get<int>());
      }
      std::sort(rs.begin(), rs.end());
      rs.erase(std::unique(rs.begin(), rs.end()), rs.end());
      if (rs.empty()) fail(where, ": ", what, ", expert ", e, " is held by no rank");
      out.push_back(std::move(rs));
    }
    return out;
  };
  if (j.contains("experts")) {
    const auto all = parse(j["experts"], "\"experts\"");
    for (int64_t l : p.layers_) p.holders_[l] = all;
  }
  if (j.contains("layers")) {
    if (!j["layers"].is_object()) fail(where, ": \"layers\" must be an object {\"<layer>\": [...]}");
    for (const auto& [k, v] : j["layers"].items()) {
      char* end = nullptr;
      const long long layer = std::strtoll(k.c_str(), &end, 10);
      if (k.empty() || *end || !p.holders_.count(layer))
        fail(where, ": layer '", k, "' is not a MoE layer of this model");
      p.holders_[layer] = parse(v, "layer " + k);
    }
  }
  return p;
}

json ExpertPlacement::to_json() const {
  json layers = json::object();
  for (const auto& [l, per] : holders_) {
    json list = json::array();
    for (const auto& rs : per) list.push_back(rs.size() == 1 ? json(rs[0]) : json(rs));
    layers[std::to_string(l)] = list;
  }
  return json{{"ranks", ranks_}, {"layers", layers}};
}

void ExpertPlacement::add_redundant(const ExpertLoads& loads, int per_layer) {
  if (per_layer <= 0 || ranks_ < 2) return;
  for (auto& [layer, per] : holders_) {
    const auto it = loads.tokens.find(layer);
    if (it == loads.tokens.end()) continue;  // no measurements for this layer
    const std::vector<uint64_t>& t = it->second;
    if (int64_t(t.size()) != experts_)
      fail("expert loads of layer ", layer, " have ", t.size(), " experts, this model has ", experts_);
    std::vector<int64_t> order(static_cast<size_t>(experts_));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return t[size_t(a)] > t[size_t(b)]; });
    for (int i = 0; i < per_layer && i < int(order.size()); ++i) {
      const int64_t hot = order[size_t(i)];
      if (t[size_t(hot)] == 0) break;
      std::vector<double> load(size_t(ranks_), 0.0);
      for (int64_t e = 0; e < experts_; ++e)
        for (int r : per[size_t(e)]) load[size_t(r)] += double(t[size_t(e)]) / double(per[size_t(e)].size());
      int best = -1;
      for (int r = 0; r < ranks_; ++r) {
        const auto& h = per[size_t(hot)];
        if (std::find(h.begin(), h.end(), r) != h.end()) continue;
        if (best < 0 || load[size_t(r)] < load[size_t(best)]) best = r;
      }
      if (best < 0) continue;  // already on every rank
      per[size_t(hot)].push_back(best);
      std::sort(per[size_t(hot)].begin(), per[size_t(hot)].end());
    }
  }
}

const std::vector<int>& ExpertPlacement::holders(int64_t layer, int64_t e) const {
  static const std::vector<int> none;
  const auto it = holders_.find(layer);
  if (it == holders_.end() || e < 0 || e >= experts_) return none;
  return it->second[size_t(e)];
}

bool ExpertPlacement::holds(int rank, int64_t layer, int64_t e) const {
  const std::vector<int>& h = holders(layer, e);
  return std::find(h.begin(), h.end(), rank) != h.end();
}

int64_t ExpertPlacement::held_by(int rank, int64_t below_layer) const {
  int64_t n = 0;
  for (const auto& [l, per] : holders_)
    if (l < below_layer)
      for (const auto& rs : per) n += std::count(rs.begin(), rs.end(), rank);
  return n;
}

}  // namespace dsv3::dist
