#include "train/run_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsv3::train {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A JSON object read key by key: every value is type-checked and range-checked with its
// full path in the message, and finish() rejects any key nobody asked for.
class Section {
 public:
  Section(const json& j, std::string path, const std::string& source) : j_(j), path_(std::move(path)), source_(source) {
    if (!j_.is_object()) fail(source_, ": ", path_.empty() ? "the top level" : "'" + path_ + "'", " must be a JSON object, got ", j_.dump());
  }

  bool has(const char* key) const { return j_.contains(key); }

  double number(const char* key, double dflt, double lo, double hi) {
    const json* v = get(key);
    if (!v) return dflt;
    if (!v->is_number()) fail(source_, ": '", where(key), "' must be a number, got ", v->dump());
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
      fail(source_, ": '", where(key), "' must be in [", lo, ", ", hi, "], got ", v->dump());
    return x;
  }
  int64_t integer(const char* key, int64_t dflt, int64_t lo, int64_t hi) {
    const json* v = get(key);
    if (!v) return dflt;
    int64_t x;
    if (v->is_number_integer()) {
      if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))
        fail(source_, ": '", where(key), "' is too large: ", v->dump());
      x = v->get<int64_t>();
    } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
               std::fabs(v->get<double>()) < 9e15) {
      x = int64_t(v->get<double>());
    } else {
      fail(source_, ": '", where(key), "' must be an integer, got ", v->dump());
    }
    if (x < lo || x > hi) fail(source_, ": '", where(key), "' must be in [", lo, ", ", hi, "], got ", x);
    return x;
  }
  uint64_t unsigned_integer(const char* key, uint64_t dflt) {
    const json* v = get(key);
    if (!v) return dflt;
    if (v->is_number_unsigned()) return v->get<uint64_t>();
    fail(source_, ": '", where(key), "' must be a non-negative integer, got ", v->dump());
  }
  bool boolean(const char* key, bool dflt) {
    const json* v = get(key);
    if (!v) return dflt;
    if (!v->is_boolean()) fail(source_, ": '", where(key), "' must be true or false, got ", v->dump());
    return v->get<bool>();
  }
  std::string string(const char* key, const std::string& dflt) {
    const json* v = get(key);
    if (!v) return dflt;
    if (!v->is_string()) fail(source_, ": '", where(key), "' must be a string, got ", v->dump());
    return v->get<std::string>();
  }
  std::string choice(const char* key, const std::string& dflt, const std::vector<std::string>& allowed) {
    const std::string s = string(key, dflt);
    std::string list;
    for (const std::string& a : allowed) {
      if (s == a) return s;
      list += (list.empty() ? "" : ", ") + a;
    }
    fail(source_, ": '", where(key), "' must be one of ", list, "; got \"", s, "\"");
  }
  std::vector<std::string> strings(const char* key) {
    const json* v = get(key);
    if (!v) return {};
    const json arr = v->is_string() ? json::array({*v}) : *v;
    if (!arr.is_array()) fail(source_, ": '", where(key), "' must be a string or an array of strings, got ", v->dump());
    std::vector<std::string> out;
    for (const json& e : arr) {
      if (!e.is_string()) fail(source_, ": '", where(key), "' must hold only strings, got ", e.dump());
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  //! A nested object (an empty one when absent).
  Section section(const char* key) {
    const json* v = get(key);
    static const json empty = json::object();
    return Section(v ? *v : empty, where(key), source_);
  }
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!used_.count(it.key()))
        fail(source_, ": unknown key '", where(it.key().c_str()), "' (see docs/training.md for the keys)");
  }

 private:
  const json* get(const char* key) {
    used_.insert(key);
    if (!j_.contains(key) || j_.at(key).is_null()) return nullptr;
    return &j_.at(key);
  }
  std::string where(const char* key) const {
    if (!*key) return path_.empty() ? "the top level" : path_;
    return path_.empty() ? key : path_ + "." + key;
  }

  const json& j_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> used_;
};

std::string resolve(const std::string& p, const std::string& base) {
  if (p.empty()) return p;
  const fs::path path(p);
  return path.is_absolute() || base.empty() ? path.lexically_normal().string() : (fs::path(base) / path).lexically_normal().string();
}

const char* schedule_name(ScheduleType t) {
  switch (t) {
    case ScheduleType::Constant: return "constant";
    case ScheduleType::Cosine: return "cosine";
    case ScheduleType::ConstantThenDecay: return "constant_then_decay";
  }
  return "?";
}

}  // namespace

RunConfig RunConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open run config '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path, fs::absolute(fs::path(path)).parent_path().string());
}

RunConfig RunConfig::parse(const std::string& text, const std::string& source, const std::string& base_dir) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(source, ": not valid JSON: ", e.what());
  }
  RunConfig c;
  c.source = source;
  Section top(j, "", source);
  const double inf = HUGE_VAL;
  const int64_t big = INT64_MAX / 4;
  {
    Section m = top.section("model");
    c.model.type = m.choice("type", c.model.type, {"deepseek_v3", "debug_moe_bigram"});
    c.model.config = resolve(m.string("config", ""), base_dir);
    c.model.preset = m.string("preset", "");
    c.model.dim = m.integer("dim", c.model.dim, 1, 1 << 16);
    c.model.experts = m.integer("experts", c.model.experts, 1, 4096);
    c.model.max_position_embeddings = m.integer("max_position_embeddings", 0, 1, int64_t(1) << 30);
    if (m.has("rope_scaling")) {
      Section r = m.section("rope_scaling");
      // "type" may say yarn (as config.json does): nothing else is supported.
      if (r.has("type")) r.choice("type", "yarn", {"yarn"});
      for (const char* key : {"factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale",
                              "mscale_all_dim"}) {
        if (!r.has(key)) continue;
        const double v = std::string(key) == "original_max_position_embeddings"
                             ? double(r.integer(key, 0, 1, int64_t(1) << 30))
                             : r.number(key, NAN, key[0] == 'm' ? 0.0 : 1e-9, 1e9);
        if (std::isnan(v)) fail(source, ": 'model.rope_scaling.", key, "' must be a number, got null");
        c.model.rope_scaling.emplace_back(key, v);
      }
      r.finish();
    }
    m.finish();
  }
  c.init_from = resolve(top.string("init_from", ""), base_dir);
  {
    Section d = top.section("data");
    c.data.tokenizer = resolve(d.string("tokenizer", ""), base_dir);
    for (const std::string& f : d.strings("train_files")) c.data.train_files.push_back(resolve(f, base_dir));
    for (const std::string& f : d.strings("eval_files")) c.data.eval_files.push_back(resolve(f, base_dir));
    c.data.eval_fraction = d.number("eval_fraction", c.data.eval_fraction, 0.0, 0.9);
    c.data.add_bos = d.boolean("add_bos", c.data.add_bos);
    c.data.add_eos = d.boolean("add_eos", c.data.add_eos);
    c.data.eval_sequences = d.integer("eval_sequences", c.data.eval_sequences, 0, big);
    c.data.passkey_fraction = d.number("passkey_fraction", c.data.passkey_fraction, 0.0, 1.0);
    c.data.passkey_loss = d.string("passkey_loss", c.data.passkey_loss);
    c.data.format = d.string("format", c.data.format);
    if (d.has("replay")) {
      Section r = d.section("replay");
      for (const std::string& f : r.strings("train_files")) c.data.replay_files.push_back(resolve(f, base_dir));
      for (const std::string& f : r.strings("eval_files")) c.data.replay_eval_files.push_back(resolve(f, base_dir));
      c.data.replay_share = r.number("share", NAN, 0.0, 0.99);
      c.data.replay_bos = r.boolean("bos", c.data.replay_bos);
      if (std::isnan(c.data.replay_share)) fail(source, ": 'data.replay.share' is required (the fraction of windows drawn from the replay text)");
      r.finish();
    }
    d.finish();
  }
  c.seq_len = top.integer("seq_len", c.seq_len, 1, 1 << 24);
  c.batch_size = top.integer("batch_size", c.batch_size, 1, 1 << 20);
  c.grad_accum = top.integer("grad_accum", c.grad_accum, 1, 1 << 20);
  c.steps = top.integer("steps", 0, 1, big);
  c.tokens = top.integer("tokens", 0, 1, big);
  {
    Section o = top.section("optimizer");
    c.optimizer.lr = o.number("lr", c.optimizer.lr, 0.0, 10.0);
    c.optimizer.beta1 = o.number("beta1", c.optimizer.beta1, 0.0, 0.999999);
    c.optimizer.beta2 = o.number("beta2", c.optimizer.beta2, 0.0, 0.999999999);
    c.optimizer.eps = o.number("eps", c.optimizer.eps, 1e-30, 1.0);
    c.optimizer.weight_decay = o.number("weight_decay", c.optimizer.weight_decay, 0.0, 10.0);
    c.optimizer.grad_clip = o.number("grad_clip", c.optimizer.grad_clip, 0.0, inf);
    o.finish();
  }
  {
    Section s = top.section("schedule");
    const std::string t = s.choice("type", schedule_name(c.schedule.type), {"constant", "cosine", "constant_then_decay"});
    c.schedule.type = t == "constant" ? ScheduleType::Constant : t == "cosine" ? ScheduleType::Cosine : ScheduleType::ConstantThenDecay;
    c.schedule.warmup_steps = s.integer("warmup_steps", c.schedule.warmup_steps, 0, big);
    c.schedule.min_lr_ratio = s.number("min_lr_ratio", c.schedule.min_lr_ratio, 0.0, 1.0);
    c.schedule.decay_start = s.number("decay_start", c.schedule.decay_start, 0.0, 1.0);
    c.schedule.decay_end = s.number("decay_end", c.schedule.decay_end, 0.0, 1.0);
    c.schedule.tail_start = s.number("tail_start", c.schedule.tail_start, 0.0, 1.0);
    c.schedule.tail_lr_ratio = s.number("tail_lr_ratio", c.schedule.tail_lr_ratio, 0.0, 1.0);
    s.finish();
  }
  c.init_std = top.number("init_std", c.init_std, 1e-12, 10.0);
  c.seed = top.unsigned_integer("seed", c.seed);
  c.eval_interval = top.integer("eval_interval", c.eval_interval, 0, big);
  c.checkpoint_interval = top.integer("checkpoint_interval", c.checkpoint_interval, 0, big);
  c.log_interval = top.integer("log_interval", c.log_interval, 1, big);
  c.precision = top.choice("precision", c.precision, {"fp32", "bf16", "fp8"});
  c.export_dtype = top.choice("export_dtype", c.export_dtype, {"bf16", "fp8", "f32", "none"});
  c.export_shards = top.integer("export_shards", c.export_shards, 1, 100000);
  {
    Section m = top.section("mtp");
    c.mtp.weight = m.number("weight", c.mtp.weight, 0.0, 100.0);
    c.mtp.later_weight = m.number("later_weight", c.mtp.later_weight, 0.0, 100.0);
    c.mtp.switch_at = m.number("switch_at", c.mtp.switch_at, 0.0, 1.0);
    m.finish();
  }
  {
    Section k = top.section("distill");
    c.distill.teacher = resolve(k.string("teacher", ""), base_dir);
    c.distill.weight = k.number("weight", c.distill.weight, 0.0, 1.0);
    c.distill.temperature = k.number("temperature", c.distill.temperature, 0.05, 100.0);
    k.finish();
  }
  {
    Section b = top.section("balance");
    c.balance.mode = b.choice("mode", "aux_free", {"aux_free", "classic"}) == "classic" ? BalanceMode::Classic : BalanceMode::AuxFree;
    c.balance.alpha = b.number("alpha", c.balance.alpha, 0.0, 100.0);
    c.balance.gamma = b.number("gamma", c.balance.gamma, 0.0, 100.0);
    c.balance.gamma_stop_at = b.number("gamma_stop_at", c.balance.gamma_stop_at, 0.0, 1.0);
    c.balance.classic_alpha = b.number("classic_alpha", c.balance.classic_alpha, 0.0, 100.0);
    b.finish();
  }
  c.out_dir = resolve(top.string("out_dir", ""), base_dir);
  c.threads = top.integer("threads", c.threads, 0, 4096);
  top.finish();
  c.validate();
  return c;
}

void RunConfig::validate() const {
  const std::string& s = source;
  if (model.type == "deepseek_v3") {
    if (int(!model.config.empty()) + int(!model.preset.empty()) + int(!init_from.empty()) != 1)
      fail(s, ": 'model' needs exactly one of 'model.config' (a config.json) or 'model.preset', or 'init_from' (a "
              "checkpoint folder, whose config.json is the architecture)");
  } else if (!model.config.empty() || !model.preset.empty() || !init_from.empty() ||
             model.max_position_embeddings > 0 || !model.rope_scaling.empty()) {
    fail(s, ": 'model.config', 'model.preset', 'init_from', 'model.max_position_embeddings' and 'model.rope_scaling' "
            "apply only to model.type deepseek_v3");
  }
  if (data.tokenizer.empty()) fail(s, ": 'data.tokenizer' is required (a tokenizer.json or a folder holding one)");
  if (data.train_files.empty()) fail(s, ": 'data.train_files' is required (text files)");
  if (data.eval_files.empty() && data.eval_sequences > 0 && data.eval_fraction <= 0)
    fail(s, ": 'data.eval_fraction' must be positive when there are no 'data.eval_files' (or set data.eval_sequences to 0)");
  if ((steps > 0) == (tokens > 0)) fail(s, ": give exactly one of 'steps' or 'tokens'");
  if (schedule.type == ScheduleType::ConstantThenDecay &&
      !(schedule.decay_start <= schedule.decay_end && schedule.decay_end <= schedule.tail_start))
    fail(s, ": 'schedule' needs decay_start <= decay_end <= tail_start, got ", schedule.decay_start, ", ",
         schedule.decay_end, ", ", schedule.tail_start);
  if (out_dir.empty()) fail(s, ": 'out_dir' is required (or pass --out)");
  if (data.passkey_fraction > 0 && model.type != "deepseek_v3")
    fail(s, ": 'data.passkey_fraction' applies to model.type deepseek_v3 only");
  if (data.format != "text" && data.format != "chat")
    fail(s, ": 'data.format' must be \"text\" or \"chat\", got \"", data.format, "\"");
  if (data.format == "chat" && model.type != "deepseek_v3")
    fail(s, ": 'data.format' \"chat\" applies to model.type deepseek_v3 only (its loss takes the answer mask)");
  if (!distill.teacher.empty() && model.type != "deepseek_v3")
    fail(s, ": 'distill' applies to model.type deepseek_v3 only");
  if (data.passkey_loss != "answer" && data.passkey_loss != "all")
    fail(s, ": 'data.passkey_loss' must be \"answer\" or \"all\", got \"", data.passkey_loss, "\"");
  if (data.format == "chat" && data.passkey_fraction > 0)
    fail(s, ": 'data.passkey_fraction' works on text data, not with 'data.format' \"chat\"");
  if (data.replay_share > 0 || !data.replay_files.empty() || !data.replay_eval_files.empty()) {
    if (data.format != "chat") fail(s, ": 'data.replay' mixes text into chat data: it needs 'data.format' \"chat\"");
    if (data.replay_files.empty()) fail(s, ": 'data.replay.train_files' is required (the text files to replay)");
    if (data.replay_share <= 0) fail(s, ": 'data.replay.share' must be above 0 (0 draws nothing from the replay text)");
  }
  if (precision != "fp32" && model.type != "deepseek_v3")
    fail(s, ": 'precision' ", precision, " applies to model.type deepseek_v3 only (", model.type, " trains in fp32)");
  if (precision != "fp32" && precision != "bf16" && precision != "fp8")
    fail(s, ": 'precision' must be fp32, bf16 or fp8, not '", precision, "'");
}

int64_t RunConfig::total_steps() const {
  if (steps > 0) return steps;
  return (tokens + tokens_per_step() - 1) / tokens_per_step();
}

std::string RunConfig::to_json() const {
  json j;
  j["model"] = {{"type", model.type}};
  if (!model.config.empty()) j["model"]["config"] = model.config;
  if (!model.preset.empty()) j["model"]["preset"] = model.preset;
  if (model.max_position_embeddings > 0) j["model"]["max_position_embeddings"] = model.max_position_embeddings;
  if (!model.rope_scaling.empty()) {
    j["model"]["rope_scaling"] = json::object();
    for (const auto& [k, v] : model.rope_scaling) j["model"]["rope_scaling"][k] = v;
  }
  if (!init_from.empty()) j["init_from"] = init_from;
  if (model.type == "debug_moe_bigram") {
    j["model"]["dim"] = model.dim;
    j["model"]["experts"] = model.experts;
  }
  j["data"] = {{"tokenizer", data.tokenizer},         {"train_files", data.train_files},
               {"eval_files", data.eval_files},       {"eval_fraction", data.eval_fraction},
               {"add_bos", data.add_bos},             {"add_eos", data.add_eos},
               {"eval_sequences", data.eval_sequences}, {"passkey_fraction", data.passkey_fraction},
               {"passkey_loss", data.passkey_loss},       {"format", data.format}};
  if (data.replay_share > 0)
    j["data"]["replay"] = {{"train_files", data.replay_files}, {"eval_files", data.replay_eval_files},
                           {"share", data.replay_share}, {"bos", data.replay_bos}};
  j["seq_len"] = seq_len;
  j["batch_size"] = batch_size;
  j["grad_accum"] = grad_accum;
  if (steps > 0) j["steps"] = steps;
  if (tokens > 0) j["tokens"] = tokens;
  j["optimizer"] = {{"lr", optimizer.lr},   {"beta1", optimizer.beta1},
                    {"beta2", optimizer.beta2}, {"eps", optimizer.eps},
                    {"weight_decay", optimizer.weight_decay}, {"grad_clip", optimizer.grad_clip}};
  j["schedule"] = {{"type", schedule_name(schedule.type)}, {"warmup_steps", schedule.warmup_steps},
                   {"min_lr_ratio", schedule.min_lr_ratio}, {"decay_start", schedule.decay_start},
                   {"decay_end", schedule.decay_end},     {"tail_start", schedule.tail_start},
                   {"tail_lr_ratio", schedule.tail_lr_ratio}};
  j["init_std"] = init_std;
  j["seed"] = seed;
  j["eval_interval"] = eval_interval;
  j["checkpoint_interval"] = checkpoint_interval;
  j["log_interval"] = log_interval;
  j["precision"] = precision;
  j["export_dtype"] = export_dtype;
  j["export_shards"] = export_shards;
  j["mtp"] = {{"weight", mtp.weight}, {"later_weight", mtp.later_weight}, {"switch_at", mtp.switch_at}};
  j["balance"] = {{"mode", balance.mode == BalanceMode::Classic ? "classic" : "aux_free"},
                  {"alpha", balance.alpha},
                  {"gamma", balance.gamma},
                  {"gamma_stop_at", balance.gamma_stop_at},
                  {"classic_alpha", balance.classic_alpha}};
  if (!distill.teacher.empty())
    j["distill"] = {{"teacher", distill.teacher}, {"weight", distill.weight}, {"temperature", distill.temperature}};
  j["out_dir"] = out_dir;
  j["threads"] = threads;
  return j.dump(2) + "\n";
}

}  // namespace dsv3::train
