#include "train/train_flops.h"

#include "model/flops.h"

namespace dsv3::train {

double train_flops_per_window(const model::ModelConfig& c, int64_t window, bool mtp) {
  const double T = double(window);
  double macs = model::forward_macs(c, 0, window, false) - model::head_macs(c);  // no head on the last token
  if (mtp && window >= 3) {
    const double M = T - 2, D = double(c.hidden_size);
    const double per_pair = double(c.num_attention_heads) * double(c.qk_head_dim() + c.v_head_dim);
    macs += M * (2 * D * D + model::layer_macs(c, c.num_hidden_layers) + model::head_macs(c)) +
            M * (M + 1) / 2 * per_pair;
  }
  return 6.0 * macs;
}

}  // namespace dsv3::train
