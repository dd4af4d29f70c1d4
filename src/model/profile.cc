#include "model/profile.h"

namespace dsv3::model {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::Other: return "other";
    case Phase::Embedding: return "embedding";
    case Phase::Norms: return "norms_residual";
    case Phase::AttnProj: return "attention_projections";
    case Phase::AttnCore: return "attention_core";
    case Phase::Router: return "router";
    case Phase::Experts: return "experts";
    case Phase::DenseMlp: return "dense_mlp";
    case Phase::Head: return "head";
    case Phase::Sampling: return "sampling";
    case Phase::kCount: break;
  }
  return "?";
}

}  // namespace dsv3::model
