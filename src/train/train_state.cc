#include "train/train_state.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/safetensors.h"

namespace dsv3::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kFormat = "dsv3-train-state";
constexpr int kVersion = 1;

json read_state_json(const std::string& dir) {
  const fs::path p = fs::path(dir) / "state.json";
  std::ifstream in(p);
  if (!in) fail("'", dir, "' holds no training state (no state.json); pass the folder a run saved its state in");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    fail(p.string(), ": not valid JSON: ", e.what());
  }
  if (!j.is_object() || j.value("format", "") != kFormat || j.value("version", 0) != kVersion)
    fail(p.string(), ": not a version ", kVersion, " dsv3 training state");
  return j;
}

void copy_into(const io::SafetensorsFile& f, const std::string& name, float* dst, uint64_t n) {
  const io::TensorInfo* t = f.find(name);
  if (!t) fail(f.path(), ": the training state has no tensor '", name, "'");
  if (t->dtype != io::DType::F32 || t->numel() != n)
    fail(f.path(), ": tensor '", name, "' has ", t->numel(), " ", io::dtype_name(t->dtype), " values, the model needs ", n, " F32");
  std::memcpy(dst, f.data(*t), n * 4);
}

// A window sampler's state and the size of the stream it walks. The 64-bit RNG state is a
// string: JSON readers elsewhere may hold numbers as doubles.
json sampler_json(const WindowSampler::State& st, int64_t stream_tokens) {
  return {{"epoch_rng", std::to_string(st.epoch_rng)}, {"epoch", st.epoch}, {"cursor", st.cursor},
          {"train_tokens", stream_tokens}};
}

void read_sampler(const json& j, WindowSampler::State& st, int64_t& stream_tokens) {
  st.epoch_rng = std::stoull(j.at("epoch_rng").get<std::string>());
  st.epoch = j.at("epoch").get<int64_t>();
  st.cursor = j.at("cursor").get<int64_t>();
  stream_tokens = j.at("train_tokens").get<int64_t>();
}

}  // namespace

void save_train_state(const std::string& dir, Trainable& model, AdamW& opt, const TrainProgress& pr,
                      const RunConfig& run) {
  const fs::path final_dir(dir);
  const fs::path tmp = final_dir.string() + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  io::SafetensorsWriter w;
  const std::vector<ParamView> params = model.params();
  if (params.size() != opt.size()) fail("save_train_state: optimizer has ", opt.size(), " moments for ", params.size(), " parameters");
  for (size_t i = 0; i < params.size(); ++i) {
    const ParamView& p = params[i];
    const uint64_t n = p.numel();
    // Streamed from the live buffers at write() time: no second copy of a large model.
    auto from = [n](const float* src) {
      return [src, n](uint8_t* dst, uint64_t) { std::memcpy(dst, src, n * 4); };
    };
    w.add("param/" + *p.name, io::DType::F32, *p.shape, from(p.value));
    w.add("adam_m/" + *p.name, io::DType::F32, *p.shape, from(opt.m(i).data()));
    w.add("adam_v/" + *p.name, io::DType::F32, *p.shape, from(opt.v(i).data()));
  }
  for (int64_t i = 0; i < model.num_moe_layers(); ++i) {
    const std::vector<float>& b = model.gate_bias(i);
    w.add_bytes("gate_bias/" + model.gate_bias_name(i), io::DType::F32, {int64_t(b.size())}, b.data(), b.size() * 4);
  }
  w.set_metadata("format", kFormat);
  w.write((tmp / "state.safetensors").string());

  json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["model_kind"] = model.kind();
  j["step"] = pr.step;
  j["tokens_seen"] = pr.tokens_seen;
  j["elapsed_s"] = pr.elapsed_s;
  j["optimizer_steps"] = opt.steps();
  j["data"] = sampler_json(pr.data, pr.train_tokens);
  if (pr.replay_tokens > 0) j["replay"] = sampler_json(pr.replay, pr.replay_tokens);
  j["run_config"] = json::parse(run.to_json());
  if (const model::ModelConfig* c = model.hf_config()) j["model_config"] = json::parse(c->to_json());
  {
    std::ofstream out(tmp / "state.json");
    out << j.dump(2) << "\n";
    if (!out) fail("cannot write ", (tmp / "state.json").string());
  }
  // Swap in the complete new state; an interrupted save leaves the old one intact.
  const fs::path old = final_dir.string() + ".old";
  fs::remove_all(old);
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  fs::remove_all(old);
}

RunConfig saved_run_config(const std::string& dir) {
  const json j = read_state_json(dir);
  if (!j.contains("run_config")) fail((fs::path(dir) / "state.json").string(), ": no run_config");
  return RunConfig::parse(j.at("run_config").dump(), (fs::path(dir) / "state.json").string() + " (run_config)", "");
}

TrainProgress load_train_state(const std::string& dir, Trainable& model, AdamW& opt) {
  const json j = read_state_json(dir);
  const std::string where = (fs::path(dir) / "state.json").string();
  TrainProgress pr;
  try {
    if (j.at("model_kind").get<std::string>() != model.kind())
      fail(where, ": the state is of a '", j.at("model_kind").get<std::string>(), "' model, this run trains '",
           model.kind(), "'");
    pr.step = j.at("step").get<int64_t>();
    pr.tokens_seen = j.at("tokens_seen").get<int64_t>();
    pr.elapsed_s = j.at("elapsed_s").get<double>();
    read_sampler(j.at("data"), pr.data, pr.train_tokens);
    if (j.contains("replay")) read_sampler(j.at("replay"), pr.replay, pr.replay_tokens);
    opt.set_steps(j.at("optimizer_steps").get<int64_t>());
  } catch (const json::exception& e) {
    fail(where, ": malformed training state: ", e.what());
  } catch (const std::logic_error& e) {  // stoull
    fail(where, ": malformed data.epoch_rng or replay.epoch_rng");
  }
  const io::SafetensorsFile f = io::SafetensorsFile::open((fs::path(dir) / "state.safetensors").string());
  const std::vector<ParamView> params = model.params();
  if (params.size() != opt.size()) fail("load_train_state: optimizer not attached to this model");
  for (size_t i = 0; i < params.size(); ++i) {
    const ParamView& p = params[i];
    const uint64_t n = p.numel();
    copy_into(f, "param/" + *p.name, p.value, n);
    copy_into(f, "adam_m/" + *p.name, opt.m(i).data(), n);
    copy_into(f, "adam_v/" + *p.name, opt.v(i).data(), n);
  }
  for (int64_t i = 0; i < model.num_moe_layers(); ++i) {
    std::vector<float>& b = model.gate_bias(i);
    copy_into(f, "gate_bias/" + model.gate_bias_name(i), b.data(), b.size());
  }
  return pr;
}

}  // namespace dsv3::train
