// Training data: text files tokenized once (ids cached on disk, keyed by a hash of the
// tokenizer, the files and the settings), a held-out split, and a deterministic shuffled
// sampler of windows of seq_len+1 tokens whose whole state is a few integers, saved with
// the training state so a resumed run draws exactly the windows an uninterrupted one would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/rng.h"
#include "train/run_config.h"

namespace dsv3::train {

struct TokenData {
  std::vector<int32_t> train, eval;
  bool from_cache = false;
  //! Chat data (chat_data.h): the streams are whole windows of seq_len+1 tokens back to back,
  //! to be read aligned (WindowSampler's `aligned`), and *_answer flags each token an
  //! assistant wrote (only those count in the loss). Empty for text data.
  bool packed = false;
  std::vector<uint8_t> train_answer, eval_answer;
  //! Text replayed among chat windows (data.replay): plain token streams, every token counted.
  std::vector<int32_t> replay, replay_eval;
};

//! Whether the g-th training window of a run (counted over all steps) comes from the replay
//! text: spread evenly, exactly round(share * n) of any n consecutive windows up to one, and
//! a function of g alone so a resumed run draws as an uninterrupted one.
bool replay_window(int64_t g, double share);

//! A replay window as training reads it: `window` tokens from `seq`, the first replaced by
//! `bos` when bos >= 0 (copied into buf, which the result then points into).
const int32_t* replay_tokens(const int32_t* seq, int64_t window, int32_t bos, std::vector<int32_t>& buf);

//! Tokenizes data.train_files (and data.eval_files, or holds out the last eval_fraction of
//! the training tokens). Each file becomes [BOS] + ids + [EOS] as add_bos / add_eos say.
//! With a non-empty cache_dir the ids are read from / written to a cache file there.
TokenData load_token_data(const DataChoice& data, const std::string& cache_dir);

//! Draws windows of `window` tokens from a token stream, epoch by epoch: each epoch picks a
//! random offset in [0, stride) and visits every window starting at offset + k*stride once,
//! in a random order. stride = window - 1, so consecutive windows share one token.
class WindowSampler {
 public:
  struct State {
    uint64_t epoch_rng = 0;  // RNG state the current epoch's offset and order were drawn from
    int64_t epoch = 0;
    int64_t cursor = 0;      // windows of this epoch already handed out
  };

  //! Throws dsv3::Error when the stream is shorter than one window. aligned: the stream is
  //! whole windows back to back (packed chat data): windows start at multiples of `window`,
  //! no random offset, no shared token.
  WindowSampler(const std::vector<int32_t>& tokens, int64_t window, uint64_t seed, bool aligned = false);

  //! The next window (window tokens; a pointer into the stream).
  const int32_t* next();
  State state() const { return state_; }
  void restore(const State& s);
  int64_t windows_per_epoch() const { return int64_t(order_.size()); }

 private:
  void start_epoch();  // draws offset and order from state_.epoch_rng

  const std::vector<int32_t>& tokens_;
  int64_t window_;
  bool aligned_;
  State state_;
  int64_t offset_ = 0;
  uint64_t next_epoch_rng_ = 0;  // where the RNG stood after drawing this epoch
  std::vector<int64_t> order_;
};

//! The first `count` non-overlapping windows of `tokens` (fewer if the stream is short).
std::vector<const int32_t*> eval_windows(const std::vector<int32_t>& tokens, int64_t window, int64_t count);

}  // namespace dsv3::train
