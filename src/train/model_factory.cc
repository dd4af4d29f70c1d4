#include "train/model_factory.h"

#include "base/error.h"
#include "model/testgen.h"
#include "train/debug_model.h"
#include "train/model_grad.h"

namespace dsv3::train {

namespace {

// model.max_position_embeddings and model.rope_scaling over the architecture's own settings.
void apply_position_settings(const RunConfig& run, model::ModelConfig& c) {
  const int64_t trained_at = c.max_position_embeddings;
  if (run.model.max_position_embeddings > 0) c.max_position_embeddings = run.model.max_position_embeddings;
  if (run.model.rope_scaling.empty()) return;
  model::RopeScaling& y = c.rope_scaling;
  if (!y.yarn) {  // turning YaRN on: the length the model was trained at is the original
    y = model::RopeScaling{};
    y.yarn = true;
    y.original_max_position_embeddings = trained_at;
  }
  for (const auto& [key, v] : run.model.rope_scaling) {
    if (key == "factor") y.factor = v;
    else if (key == "original_max_position_embeddings") y.original_max_position_embeddings = int64_t(v);
    else if (key == "beta_fast") y.beta_fast = v;
    else if (key == "beta_slow") y.beta_slow = v;
    else if (key == "mscale") y.mscale = v;
    else if (key == "mscale_all_dim") y.mscale_all_dim = v;
  }
  c.validate(run.source + " (model.rope_scaling)");
}

}  // namespace

model::ModelConfig run_model_config(const RunConfig& run, int64_t tokenizer_vocab) {
  model::ModelConfig c = !run.init_from.empty() ? model::ModelConfig::load(run.init_from + "/config.json")
                         : run.model.config.empty() ? model::test_model_config(run.model.preset)
                                                    : model::ModelConfig::load(run.model.config);
  apply_position_settings(run, c);
  if (!run.model.preset.empty() && c.vocab_size < tokenizer_vocab) {
    // Presets are sized for no tokenizer in particular: pad to the tokenizer as V3 pads
    // 128815 ids to 129280 rows.
    c.vocab_size = (tokenizer_vocab + 1279) / 1280 * 1280;
  }
  if (c.vocab_size < tokenizer_vocab)
    fail(run.init_from.empty() ? run.model.config : run.init_from + "/config.json", ": vocab_size ", c.vocab_size, " is smaller than the tokenizer's ", tokenizer_vocab, " ids");
  return c;
}

std::unique_ptr<Trainable> make_trainable(const RunConfig& run, int64_t tokenizer_vocab, ThreadPool& pool) {
  if (run.model.type == "debug_moe_bigram")
    return std::make_unique<DebugMoeBigram>(tokenizer_vocab, run.model.dim, run.model.experts, run.seed, run.init_std,
                                            pool);
  if (run.model.type == "deepseek_v3") {
    const model::ModelConfig cfg = run_model_config(run, tokenizer_vocab);
    auto m = std::make_unique<TrainModel>(run.init_from.empty() ? TrainModel::init(cfg, run.seed, run.init_std, pool)
                                                                : TrainModel::from_checkpoint(run.init_from, cfg, pool));
    m->set_precision(kernels::parse_numerics(run.precision));
    return m;
  }
  fail(run.source, ": unknown model.type '", run.model.type, "'");
}

}  // namespace dsv3::train
