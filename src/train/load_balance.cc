#include "train/load_balance.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3::train {

void update_gate_bias(std::vector<float>& bias, const std::vector<int64_t>& load, double gamma) {
  if (bias.size() != load.size()) fail("gate bias has ", bias.size(), " experts but the load counts ", load.size());
  if (load.empty()) return;
  int64_t total = 0;
  for (int64_t l : load) total += l;
  // Compare load_i * E with the total so the mean never needs rounding.
  const int64_t E = int64_t(load.size());
  for (size_t i = 0; i < load.size(); ++i) {
    const int64_t diff = total - load[i] * E;
    const double sign = diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0;
    bias[i] = float(double(bias[i]) + gamma * sign);
  }
}

double max_violation(const std::vector<int64_t>& load) {
  if (load.empty()) return 0.0;
  int64_t total = 0;
  for (int64_t l : load) total += l;
  if (total == 0) return 0.0;
  const int64_t mx = *std::max_element(load.begin(), load.end());
  return double(mx) * double(load.size()) / double(total) - 1.0;
}

}  // namespace dsv3::train
