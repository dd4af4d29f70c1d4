// `--numerics bf16|fp8|fp32` and `--exact` (= `--numerics fp32`), shared by every command that
// runs the model. Commands that serve text default to bf16 (the official inference's
// numerics, at BF16 speed); `logits` defaults to fp32, the exact reference.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "kernels/numerics.h"

namespace dsv3::app {

struct NumericsFlag {
  std::string name;
  bool exact = false;
  kernels::Numerics value() const { return exact ? kernels::Numerics::Fp32 : kernels::parse_numerics(name); }
};

inline void add_numerics_flags(CLI::App* cmd, NumericsFlag& f, const std::string& default_name) {
  f.name = default_name;
  CLI::Option* n = cmd->add_option("--numerics", f.name,
                                   "bf16: BF16 inputs to every GEMM and BF16 products in attention over a BF16 "
                                   "latent cache, fp32 sums (the official inference's numerics; the fast path); fp8: as the official gemm_impl \"fp8\", "
                                   "products with FP8 weights take activations quantized to e4m3 per 128 channels; "
                                   "fp32: fp32 throughout (the exact reference)")
                       ->check(CLI::IsMember({"bf16", "fp8", "fp32"}))
                       ->capture_default_str();
  cmd->add_flag("--exact", f.exact, "the same as --numerics fp32")->excludes(n);
}

}  // namespace dsv3::app
