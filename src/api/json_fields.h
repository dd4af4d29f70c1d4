// Reading request fields with errors that name them: what every API parser in src/api
// shares. A null value counts as absent (OpenAI and Anthropic both treat it so); a wrong type
// or value throws ApiError 400 with `param` set to the field's path ("messages[1].content").
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/errors.h"

namespace dsv3::api::json_fields {

using ojson = nlohmann::ordered_json;

[[noreturn]] inline void bad(const std::string& param, const std::string& message) {
  throw ApiError::invalid(param, message);
}

inline const char* type_name(const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::null: return "null";
    case ojson::value_t::boolean: return "a boolean";
    case ojson::value_t::string: return "a string";
    case ojson::value_t::array: return "an array";
    case ojson::value_t::object: return "an object";
    case ojson::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

// The value of `key`, or nullptr when absent or null (OpenAI treats null as "not given").
inline const ojson* field(const ojson& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

inline std::string join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}
inline std::string at(const std::string& parent, size_t i) { return parent + "[" + std::to_string(i) + "]"; }

[[noreturn]] inline void wrong_type(const std::string& param, const ojson& v, const char* want) {
  bad(param, "Invalid type for '" + param + "': expected " + want + ", but got " + type_name(v) + ".");
}

inline double get_number(const ojson& v, const std::string& param) {
  if (!v.is_number()) wrong_type(param, v, "a number");
  return v.get<double>();
}

inline int64_t get_int(const ojson& v, const std::string& param) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      bad(param, "Invalid value for '" + param + "': integer too large.");
    return v.get<int64_t>();
  }
  // JavaScript clients may send 2.0 for 2.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9e15) return int64_t(d);
  }
  wrong_type(param, v, "an integer");
}

inline bool get_bool(const ojson& v, const std::string& param) {
  if (!v.is_boolean()) wrong_type(param, v, "a boolean");
  return v.get<bool>();
}

inline const std::string& get_string(const ojson& v, const std::string& param) {
  if (!v.is_string()) wrong_type(param, v, "a string");
  return v.get_ref<const std::string&>();
}

inline const ojson& get_object(const ojson& v, const std::string& param) {
  if (!v.is_object()) wrong_type(param, v, "an object");
  return v;
}

inline const ojson& get_array(const ojson& v, const std::string& param) {
  if (!v.is_array()) wrong_type(param, v, "an array");
  return v;
}

//! A content field as one string: a string as it is, or an array of parts (objects with a
//! "type") whose texts `part_text(part, param_of_part, type)` gives, joined by "\n" (what
//! vLLM does with OpenAI content parts). part_text throws for a part it refuses.
template <class PartText>
std::string joined_parts(const ojson& content, const std::string& param, const char* want, PartText part_text) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) wrong_type(param, content, want);
  std::string out;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string p = at(param, i);
    const ojson& part = get_object(content[i], p);
    const ojson* t = field(part, "type");
    if (!t) bad(join(p, "type"), "Missing required parameter: '" + join(p, "type") + "'.");
    const std::string text = part_text(part, p, get_string(*t, join(p, "type")));
    if (i) out += '\n';
    out += text;
  }
  return out;
}

//! A request body as JSON; malformed JSON is a 400.
inline ojson parse_body(std::string_view body) {
  ojson j = ojson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw ApiError(400, "We could not parse the JSON body of your request: it is not valid JSON.");
  return j;
}

//! A body that is not an object is a 400.
inline void check_body(const ojson& body) {
  if (!body.is_object()) throw ApiError(400, "The request body must be a JSON object, got " +
                                                 std::string(type_name(body)) + ".");
}

}  // namespace dsv3::api::json_fields
