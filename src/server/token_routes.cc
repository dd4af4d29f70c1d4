#include "server/token_routes.h"

#include <nlohmann/json.hpp>

#include "api/errors.h"

namespace dsv3::server {
namespace {

using json = nlohmann::json;

json parse_object(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw api::ApiError(400, "We could not parse the JSON body of your request: it is not valid JSON.");
  if (!j.is_object()) throw api::ApiError(400, "The request body must be a JSON object.");
  return j;
}

const json* either(const json& j, const char* a, const char* b) {
  if (j.contains(a)) return &j[a];
  if (j.contains(b)) return &j[b];
  return nullptr;
}

}  // namespace

std::string tokenize_body(const ServeContext& ctx, std::string_view body) {
  const json j = parse_object(body);
  if (j.contains("model") && j["model"].is_string()) ctx.check_model(j["model"].get<std::string>());
  const json* text = either(j, "prompt", "content");
  if (!text || !text->is_string())
    throw api::ApiError::invalid("prompt", "'prompt' (or 'content') must be a string.");
  bool special = true;
  if (const json* s = either(j, "add_special_tokens", "add_special")) {
    if (!s->is_boolean()) throw api::ApiError::invalid("add_special_tokens", "'add_special_tokens' must be a boolean.");
    special = s->get<bool>();
  }
  const std::vector<int32_t> ids =
      ctx.tok.encode(text->get<std::string>(), special && ctx.tok.add_bos_by_default(), /*parse_special=*/false);
  return json{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx.engine.options().ctx_size}}.dump();
}

std::string detokenize_body(const ServeContext& ctx, std::string_view body) {
  const json j = parse_object(body);
  if (j.contains("model") && j["model"].is_string()) ctx.check_model(j["model"].get<std::string>());
  if (!j.contains("tokens") || !j["tokens"].is_array())
    throw api::ApiError::invalid("tokens", "'tokens' must be an array of token ids.");
  std::vector<int32_t> ids;
  for (const json& t : j["tokens"]) {
    if (!t.is_number_integer() || !ctx.tok.is_valid_id(t.get<int32_t>()))
      throw api::ApiError::invalid("tokens", "'tokens' holds " + t.dump() + ", which is not a token id of this tokenizer.");
    ids.push_back(t.get<int32_t>());
  }
  const std::string text = ctx.tok.decode(ids);
  return json{{"prompt", text}, {"content", text}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace dsv3::server
