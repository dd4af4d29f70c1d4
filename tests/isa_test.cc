// The whole model under every instruction set this CPU supports: decode equals prefill, and
// both stay close to the scalar twins. (Each kernel against its twin under every ISA is the
// kernel case table in kernels_test.cc.)
#include <gtest/gtest.h>

#include <filesystem>

#include "isa_util.h"
#include "kernels/isa.h"
#include "model/model.h"
#include "model/testgen.h"
#include "test_util.h"

namespace dsv3 {
namespace {

class IsaTest : public ::testing::TestWithParam<kernels::Isa> {};

TEST_P(IsaTest, ModelDecodeMatchesPrefill) {
  testutil::IsaScope isa(GetParam());
  ASSERT_TRUE(isa.ok());
  testutil::TempDir dir("isa");
  model::make_test_model({"tiny", "fp8", 21, 1, dir.path().string(), false});
  const model::Model m = model::Model::load(dir.path().string());
  model::Workspace ws(testutil::pool());
  const std::vector<int32_t> toks = {0, 5, 900, 17, 3, 3, 250, 999, 64};
  const int64_t T = int64_t(toks.size()), V = m.config().vocab_size;
  std::vector<float> a(size_t(T * V)), b(a.size()), ref(a.size());
  model::KvCache c1 = m.new_cache(T), c2 = m.new_cache(T), c3 = m.new_cache(T);
  m.forward(ws, toks.data(), T, c1, a.data());
  for (int64_t t = 0; t < T; ++t) m.forward(ws, &toks[t], 1, c2, &b[t * V]);
  kernels::set_reference_kernels(true);
  m.forward(ws, toks.data(), T, c3, ref.data());
  kernels::set_reference_kernels(false);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], b[i], 2e-5) << i;
    ASSERT_NEAR(a[i], ref[i], 5e-5) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Supported, IsaTest, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });

}  // namespace
}  // namespace dsv3
