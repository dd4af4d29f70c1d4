#include "train/metrics_log.h"

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsv3::train {
namespace {

using json = nlohmann::json;

// JSON has no NaN or infinity; a diverged loss is logged as null rather than corrupting the line.
json num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

}  // namespace

MetricsLog::MetricsLog(const std::string& path, int64_t keep_up_to) : path_(path) {
  std::string kept;
  if (keep_up_to >= 0) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        const json j = json::parse(line);
        if (j.value("step", int64_t(0)) <= keep_up_to) kept += line + "\n";
      } catch (const json::exception&) {
        // A line cut short by a crash: dropped.
      }
    }
  }
  out_.open(path, std::ios::trunc);
  if (!out_) fail("cannot write the metrics log '", path, "'");
  out_ << kept;
  out_.flush();
}

void MetricsLog::write(const StepRecord& r) {
  json j = {{"kind", "train"},      {"step", r.step},       {"lr", r.lr},
            {"loss", num(r.loss)},  {"main_ce", num(r.main_ce)}, {"mtp_ce", num(r.mtp_ce)},
            {"balance", num(r.balance)}, {"grad_norm", num(r.grad_norm)}, {"mtp_weight", r.mtp_weight},
            {"gamma", r.gamma},     {"tokens", r.tokens},   {"tokens_per_s", num(r.tokens_per_s)}};
  if (r.mfu >= 0) j["mfu"] = num(r.mfu);
  if (!std::isnan(r.kd)) j["kd"] = num(r.kd);
  j["maxvio"] = json::array();
  for (double m : r.maxvio) j["maxvio"].push_back(num(m));
  if (!r.expert_load.empty()) j["expert_load"] = r.expert_load;
  out_ << j.dump() << "\n";
  out_.flush();
  if (!out_) fail("cannot write the metrics log '", path_, "'");
}

void MetricsLog::write(const EvalRecord& r) {
  json j = {{"kind", "eval"}, {"step", r.step}, {"eval_loss", num(r.loss)}, {"eval_perplexity", num(r.perplexity)},
            {"eval_tokens", r.tokens}};
  if (std::isfinite(r.accuracy)) j["eval_accuracy"] = r.accuracy;
  if (std::isfinite(r.mtp_loss)) j["eval_mtp_ce"] = r.mtp_loss;
  if (std::isfinite(r.mtp_accuracy)) j["eval_mtp_accuracy"] = r.mtp_accuracy;
  if (std::isfinite(r.text_loss)) {
    j["eval_text_loss"] = r.text_loss;
    j["eval_text_perplexity"] = num(r.text_perplexity);
  }
  out_ << j.dump() << "\n";
  out_.flush();
  if (!out_) fail("cannot write the metrics log '", path_, "'");
}

namespace {

// Calls f with each line of `in` that parses as a JSON object; a line cut short by a crash
// is skipped.
template <class F>
void for_each_record(std::istream& in, F&& f) {
  std::string line;
  while (std::getline(in, line)) {
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      continue;
    }
    if (j.is_object()) f(j);
  }
}

}  // namespace

LossCurves read_loss_curves(const std::string& path) {
  LossCurves c;
  std::ifstream in(path);
  for_each_record(in, [&](const json& j) {
    const std::string kind = j.value("kind", "");
    const char* key = kind == "train" ? "loss" : kind == "eval" ? "eval_loss" : nullptr;
    if (!key || !j.contains(key) || !j.at(key).is_number()) return;
    (kind == "train" ? c.train : c.eval).emplace_back(j.value("step", int64_t(0)), j.at(key).get<double>());
  });
  return c;
}

std::vector<std::pair<double, double>> read_metric(const std::string& path, const std::string& field) {
  std::ifstream in(path);
  if (!in) fail("cannot read the metrics file '", path, "'");
  std::string key = field;
  int64_t index = -1;
  if (const size_t b = field.find('['); b != std::string::npos && field.back() == ']') {
    key = field.substr(0, b);
    try {
      index = std::stoll(field.substr(b + 1, field.size() - b - 2));
    } catch (const std::exception&) {
      fail("bad metric '", field, "': write field[i] with a number i");
    }
  }
  std::vector<std::pair<double, double>> out;
  std::set<std::string> seen;
  for_each_record(in, [&](const json& j) {
    for (const auto& [k, v] : j.items())
      if (v.is_number() || v.is_array()) seen.insert(k);
    if (!j.contains(key)) return;
    const json& v = j.at(key);
    const double step = j.value("step", 0.0);
    if (v.is_number() && index < 0) {
      out.emplace_back(step, v.get<double>());
    } else if (v.is_array() && !v.empty()) {
      if (index >= 0) {
        if (index < int64_t(v.size()) && v[size_t(index)].is_number()) out.emplace_back(step, v[size_t(index)].get<double>());
      } else {
        double sum = 0;
        size_t n = 0;
        for (const json& e : v)
          if (e.is_number()) sum += e.get<double>(), ++n;
        if (n) out.emplace_back(step, sum / double(n));
      }
    }
  });
  if (out.empty()) {
    std::string names;
    for (const std::string& k : seen) names += (names.empty() ? "" : ", ") + k;
    fail("'", path, "' has no metric '", field, "' (it has: ", names.empty() ? "none" : names, ")");
  }
  return out;
}

}  // namespace dsv3::train
