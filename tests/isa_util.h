// Running a test under every instruction set this CPU and build support: the parameter
// list, and a fixture that switches the kernels to the test's ISA and back.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/isa.h"

namespace dsv3::testutil {

inline std::vector<kernels::Isa> supported_isas() {
  std::vector<kernels::Isa> out;
  const kernels::Isa before = kernels::active_isa();
  for (kernels::Isa i : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Avx512Bf16})
    if (kernels::set_isa(i)) out.push_back(i);
  kernels::set_isa(before);
  return out;
}

//! Sets the kernels' ISA for its lifetime (and the reference switch off).
class IsaScope {
 public:
  explicit IsaScope(kernels::Isa isa) : saved_(kernels::active_isa()), saved_ref_(kernels::reference_kernels()) {
    ok_ = kernels::set_isa(isa);
    kernels::set_reference_kernels(false);
  }
  ~IsaScope() {
    kernels::set_isa(saved_);
    kernels::set_reference_kernels(saved_ref_);
  }
  bool ok() const { return ok_; }

 private:
  kernels::Isa saved_;
  bool saved_ref_, ok_ = false;
};

inline std::string isa_label(kernels::Isa isa) { return kernels::isa_name(isa); }

}  // namespace dsv3::testutil
