// The teacher of logit distillation (run config `distill`, docs/training.md): a checkpoint
// folder run by the inference engine's own forward pass (fp32 numerics, the exact path), whose
// next-token logits for each training window are computed on the fly. It must speak the
// student's tokenizer: the vocabularies are compared token by token when it loads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/workspace.h"
#include "threading/pool.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::train {

class Teacher {
 public:
  //! Loads `dir` (config.json, safetensors, tokenizer.json); throws dsv3::Error when its
  //! vocabulary differs from `student` (size, or any token's bytes) or from the student
  //! model's vocab_size. A null `student` checks the sizes only (`dsv3 grad` on checkpoints
  //! without tokenizer files).
  Teacher(const std::string& dir, const Tokenizer* student, int64_t student_vocab, ThreadPool& pool);

  //! The teacher's logits [T - 1, vocab] predicting tokens 1 .. T-1 of `tokens`; valid until
  //! the next call.
  const float* logits(const int32_t* tokens, int64_t T);

 private:
  model::Model model_;
  model::Workspace ws_;
  std::vector<float> logits_;
};

}  // namespace dsv3::train
