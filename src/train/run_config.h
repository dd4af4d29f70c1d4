// The run configuration of `dsv3 train`: one JSON file (documented key by key in
// docs/training.md). Loading is strict: an unknown key, a wrong type or a value out of range
// is a dsv3::Error naming the file and the key's full path ("optimizer.lr").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsv3::train {

struct ModelChoice {
  std::string type = "deepseek_v3";   // "deepseek_v3" | "debug_moe_bigram"
  std::string config;                 // deepseek_v3: a config.json (absolute once loaded)
  std::string preset;                 // deepseek_v3: a make-test-model preset instead of a file
  int64_t dim = 32;                   // debug_moe_bigram: embedding width
  int64_t experts = 4;                // debug_moe_bigram: routed experts (top-1)
  // deepseek_v3: changes to the architecture's position settings (context extension);
  // 0 / empty keep what the config, preset or init_from checkpoint says.
  int64_t max_position_embeddings = 0;
  std::vector<std::pair<std::string, double>> rope_scaling;  // YaRN keys to set (key, value)
};

struct DataChoice {
  std::string tokenizer;              // tokenizer.json or a folder holding one
  std::vector<std::string> train_files;
  std::vector<std::string> eval_files;  // empty: hold out the tail of the training text
  double eval_fraction = 0.05;
  bool add_bos = true, add_eos = true;  // around each file
  int64_t eval_sequences = 16;        // windows scored at each evaluation
  double passkey_fraction = 0;        // share of training windows turned into passkey examples
  std::string passkey_loss = "answer";  // which of their tokens count: "answer" or "all" (passkey_data.h)
  std::string format = "text";        // "text": plain text files; "chat": JSONL conversations (chat_data.h)
  // Chat data only: a share of the training windows drawn from text files instead (replay of
  // pretraining text while fine-tuning, so the model keeps modelling text), every token of
  // them counted; replay_eval_files are scored at each evaluation as well.
  std::vector<std::string> replay_files, replay_eval_files;
  double replay_share = 0;            // fraction of each batch's windows; 0: no replay
  // Each replay window starts with BOS (in place of its first token), as every prompt does at
  // inference: chat windows always follow BOS with the template's user marker, so without
  // it a model learns that BOS + plain text ends at the first line (with an EOS).
  bool replay_bos = true;
};

struct OptimizerChoice {
  double lr = 2.2e-4;                 // peak learning rate
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;          // not applied to 1-D tensors (norms, biases)
  double grad_clip = 1.0;             // global L2 norm; 0 disables clipping
};

enum class ScheduleType { Constant, Cosine, ConstantThenDecay };

struct ScheduleChoice {
  ScheduleType type = ScheduleType::Cosine;
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;          // floor of the cosine, as a fraction of lr
  // constant_then_decay (DeepSeek-V3 report §4.2), as fractions of the total steps:
  double decay_start = 0.676, decay_end = 0.966, tail_start = 0.989;
  double tail_lr_ratio = 0.0332;      // the last tail's lr / lr (7.3e-6 / 2.2e-4)
};

struct MtpChoice {
  double weight = 0.3, later_weight = 0.1;
  double switch_at = 0.676;           // fraction of the total steps
};

//! Logit distillation (train/teacher.h): the main loss becomes (1 - weight) CE + weight T^2
//! KL(teacher_T || student_T). No teacher: plain training.
struct DistillChoice {
  std::string teacher;                // a checkpoint folder with the student's tokenizer
  double weight = 0.5;                // share of the soft (teacher) term
  double temperature = 2.0;           // softmax temperature of both distributions in the KL
};

enum class BalanceMode { AuxFree, Classic };

struct BalanceChoice {
  BalanceMode mode = BalanceMode::AuxFree;
  double alpha = 1e-4;                // sequence-wise balance loss weight (aux_free mode)
  double gamma = 0.001;               // bias update speed
  double gamma_stop_at = 0.966;       // fraction of the total steps after which gamma is 0
  double classic_alpha = 0.01;        // classic mode: auxiliary loss weight, biases frozen
};

struct RunConfig {
  std::string source;                 // the file it came from (for messages)
  ModelChoice model;
  std::string init_from;              // a Hugging Face checkpoint folder to start from
  DataChoice data;
  int64_t seq_len = 256;              // predicted tokens per sequence (windows hold seq_len+1)
  int64_t batch_size = 8;             // sequences per micro-batch
  int64_t grad_accum = 1;             // micro-batches per optimizer step
  int64_t steps = 0;                  // optimizer steps; or
  int64_t tokens = 0;                 // a token budget that sets the steps
  OptimizerChoice optimizer;
  ScheduleChoice schedule;
  double init_std = 0.006;
  uint64_t seed = 1;
  int64_t eval_interval = 100;        // 0: evaluate only at the end
  int64_t checkpoint_interval = 0;    // 0: save only at the end
  int64_t log_interval = 1;           // steps between metrics lines
  std::string precision = "fp32";     // "fp32" | "bf16" | "fp8" (train/low_precision.h)
  std::string export_dtype = "bf16";  // "bf16" | "fp8" | "f32" | "none"
  int64_t export_shards = 1;
  MtpChoice mtp;
  BalanceChoice balance;
  DistillChoice distill;
  std::string out_dir;
  int64_t threads = 0;                // 0: the global default

  //! Reads and validates a run config; relative paths are taken from the file's folder.
  static RunConfig load(const std::string& path);
  //! Parses JSON text; relative paths are resolved against base_dir.
  static RunConfig parse(const std::string& text, const std::string& source, const std::string& base_dir);
  //! Throws dsv3::Error naming the first bad setting.
  void validate() const;
  //! Round-trips through parse() (paths stay absolute). Stored with the training state.
  std::string to_json() const;

  int64_t tokens_per_step() const { return seq_len * batch_size * grad_accum; }
  //! `steps`, or the steps the token budget needs (rounded up).
  int64_t total_steps() const;
};

}  // namespace dsv3::train
