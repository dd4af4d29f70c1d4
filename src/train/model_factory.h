// The one place a run's model is built: the wiring point between `dsv3 train` and the
// model implementations.
#pragma once

#include <cstdint>
#include <memory>

#include "model/config.h"
#include "threading/pool.h"
#include "train/run_config.h"
#include "train/trainable.h"

namespace dsv3::train {

//! The model `run.model` asks for, freshly initialized from run.seed / run.init_std (or with
//! run.init_from's weights; the optimizer starts fresh either way), for a tokenizer with ids below tokenizer_vocab, computing on `pool` (which must outlive it).
std::unique_ptr<Trainable> make_trainable(const RunConfig& run, int64_t tokenizer_vocab, ThreadPool& pool);

//! The DeepSeek-V3 config of a deepseek_v3 run (model.config file, model.preset or the
//! init_from checkpoint's config.json, with model.max_position_embeddings and
//! model.rope_scaling applied), checked against the tokenizer's vocabulary.
model::ModelConfig run_model_config(const RunConfig& run, int64_t tokenizer_vocab);

}  // namespace dsv3::train
