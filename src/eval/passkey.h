// Passkey retrieval ("needle in a haystack"): a five-digit key hidden at a given depth in
// filler text of a given length, asked for at the end; accuracy per (length, depth) cell,
// and the grid as an SVG heatmap. The prompt follows the passkey test of the long-context
// papers (Landmark Attention, YaRN) that DeepSeek-V3's report evaluates the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/backend.h"
#include "eval/run.h"

namespace dsv3::eval {

struct PasskeyOptions {
  std::vector<int64_t> lengths;  // prompt lengths in tokens
  std::vector<double> depths;    // where the key sits, 0 (start) .. 1 (end)
  int64_t trials = 4;            // keys per cell
};

struct PasskeyGrid {
  std::vector<int64_t> lengths;
  std::vector<double> depths;
  std::vector<std::vector<double>> accuracy;  // [length][depth]
};

//! The prompt with `key` at `depth` and about `tokens` tokens (never more).
std::string passkey_prompt(Backend& b, int64_t tokens, double depth, const std::string& key);
PasskeyGrid run_passkey(Backend& b, const PasskeyOptions& o, const Progress& progress);
//! The grid as a TaskResult (accuracy overall, and per length).
TaskResult passkey_result(const PasskeyGrid& g, double seconds);
//! Rows: depths, columns: lengths; each cell coloured by accuracy and labelled with it.
std::string passkey_heatmap_svg(const PasskeyGrid& g, const std::string& title);

}  // namespace dsv3::eval
