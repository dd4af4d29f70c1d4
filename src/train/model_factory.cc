#include "train/model_factory.h"

#include "base/error.h"
#include "model/testgen.h"
#include "train/debug_model.h"
#include "train/model_grad.h"

namespace dsv3::train {

model::ModelConfig run_model_config(const RunConfig& run, int64_t tokenizer_vocab) {
  model::ModelConfig c = run.model.config.empty() ? model::test_model_config(run.model.preset) : model::ModelConfig::load(run.model.config);
  if (!run.model.preset.empty() && c.vocab_size < tokenizer_vocab) {
    // Presets are sized for no tokenizer in particular: pad to the tokenizer as V3 pads
    // 128815 ids to 129280 rows.
    c.vocab_size = (tokenizer_vocab + 1279) / 1280 * 1280;
  }
  if (c.vocab_size < tokenizer_vocab)
    fail(run.model.config, ": vocab_size ", c.vocab_size, " is smaller than the tokenizer's ", tokenizer_vocab, " ids");
  return c;
}

std::unique_ptr<Trainable> make_trainable(const RunConfig& run, int64_t tokenizer_vocab, ThreadPool& pool) {
  if (run.model.type == "debug_moe_bigram")
    return std::make_unique<DebugMoeBigram>(tokenizer_vocab, run.model.dim, run.model.experts, run.seed, run.init_std,
                                            pool);
  if (run.model.type == "deepseek_v3") {
    const model::ModelConfig cfg = run_model_config(run, tokenizer_vocab);
    auto m = std::make_unique<TrainModel>(TrainModel::init(cfg, run.seed, run.init_std, pool));
    m->set_precision(kernels::parse_numerics(run.precision));
    return m;
  }
  fail(run.source, ": unknown model.type '", run.model.type, "'");
}

}  // namespace dsv3::train
