// POST /tokenize and /detokenize: the model's tokenizer over HTTP, for evaluation harnesses
// that count and cut tokens themselves (lm-evaluation-harness, llama.cpp and vLLM clients).
// Both accept vLLM's and llama.cpp's field names.
#pragma once

#include <string>
#include <string_view>

#include "server/context.h"

namespace dsv3::server {

//! {"prompt" | "content": text, "add_special_tokens" | "add_special": bool (default true)}
//! -> {"tokens": [ids], "count": n, "max_model_len": context}.
std::string tokenize_body(const ServeContext& ctx, std::string_view body);
//! {"tokens": [ids]} -> {"prompt": text, "content": text}.
std::string detokenize_body(const ServeContext& ctx, std::string_view body);

}  // namespace dsv3::server
