#include "tokenizer/deepseek_v3_layout.h"

namespace dsv3::tok {

PreTokenizer deepseek_v3_pretokenizer() {
  PreTokenizer p;
  for (std::string_view pattern : kDeepSeekV3SplitPatterns)
    p.add({Regex(std::string(pattern)), SplitBehavior::Isolated, false});
  return p;
}

AddedToken to_added_token(const TokenSpec& spec, int32_t id) {
  AddedToken t;
  t.content = std::string(spec.content);
  t.id = id;
  t.special = spec.special;
  t.normalized = !spec.special;
  return t;
}

}  // namespace dsv3::tok
