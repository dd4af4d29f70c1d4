#include "train/teacher.h"

#include <filesystem>

#include "base/error.h"

namespace dsv3::train {

namespace {

model::Model load_teacher(const std::string& dir) {
  model::LoadOptions lo;
  lo.load_mtp = false;  // distillation uses the main head's logits only
  return model::Model::load(dir, lo);
}

}  // namespace

Teacher::Teacher(const std::string& dir, const Tokenizer* student_tok, int64_t student_vocab, ThreadPool& pool)
    : model_(load_teacher(dir)), ws_(pool) {
  const int64_t V = model_.config().vocab_size;
  if (V != student_vocab)
    fail("distill.teacher '", dir, "' has a vocabulary of ", V, " logits, the student ", student_vocab,
         ": teacher and student need the same tokenizer");
  if (!student_tok) return;
  const Tokenizer& student = *student_tok;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json"))
    fail("distill.teacher '", dir, "' has no tokenizer.json: the teacher's tokenizer must be checked against the student's");
  const Tokenizer t = Tokenizer::load(dir);
  if (t.vocab_size() != student.vocab_size())
    fail("distill.teacher '", dir, "': its tokenizer has ", t.vocab_size(), " tokens, the student's ", student.vocab_size());
  for (int32_t id = 0; id < t.vocab_size(); ++id)
    if (t.token_bytes(id) != student.token_bytes(id))
      fail("distill.teacher '", dir, "': token ", id, " differs from the student's tokenizer (teacher and student need the same one)");
}

const float* Teacher::logits(const int32_t* tokens, int64_t T) {
  const int64_t V = model_.config().vocab_size;
  logits_.resize(size_t(T * V));
  model::KvCache cache = model_.new_cache(T);
  model_.forward(ws_, tokens, T, cache, logits_.data());
  return logits_.data();  // rows 0 .. T-2 predict tokens 1 .. T-1
}

}  // namespace dsv3::train
