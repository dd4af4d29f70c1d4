#include "train/step_profile.h"

#include <cstdio>

namespace dsv3::train {
namespace {
thread_local StepProfile* g_active = nullptr;  // the training loop's thread only
}

const char* step_phase_name(StepPhase p) {
  switch (p) {
    case StepPhase::Other: return "other";
    case StepPhase::Model: return "model (norms, RoPE, activations, router, losses)";
    case StepPhase::GemmFprop: return "GEMM Fprop (y = x W^T)";
    case StepPhase::GemmDgrad: return "GEMM Dgrad (dx = dy W)";
    case StepPhase::GemmWgrad: return "GEMM Wgrad (dW = dy^T x)";
    case StepPhase::Quantize: return "FP8/BF16 operands";
    case StepPhase::AttnCore: return "attention core (scores, softmax, values)";
    case StepPhase::Experts: return "routed experts (GEMMs + SwiGLU, one per core)";
    case StepPhase::Optimizer: return "optimizer (clip, AdamW, gate biases)";
    case StepPhase::Eval: return "evaluation";
    case StepPhase::Data: return "data";
    case StepPhase::Teacher: return "teacher forward (distillation)";
    case StepPhase::kCount: break;
  }
  return "?";
}

StepProfile* StepProfile::active() { return g_active; }
void StepProfile::set_active(StepProfile* p) { g_active = p; }

std::string StepProfile::table() const {
  double total = 0;
  for (double s : seconds) total += s;
  std::string out;
  char line[160];
  for (size_t i = 0; i < seconds.size(); ++i) {
    if (seconds[i] <= 0) continue;
    std::snprintf(line, sizeof line, "  %-48s %9.3f s  %5.1f%%\n", step_phase_name(StepPhase(i)), seconds[i],
                  total > 0 ? 100.0 * seconds[i] / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-48s %9.3f s\n", "total", total);
  return out + line;
}

}  // namespace dsv3::train
