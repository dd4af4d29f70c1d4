// An independent reading of the JSON Schema subset the constrained-sampling tests use, to
// check generated values against their schema without the compiler under test.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace dsv3::testutil {

//! Validates v against schema s (root: the schema $refs resolve in).
inline bool validates(const nlohmann::json& v, const nlohmann::json& s, const nlohmann::json& root) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    return validates(v, ref == "#" ? root : root.at(nlohmann::json::json_pointer(ref.substr(1))), root);
  }
  if (s.contains("anyOf")) {
    for (const auto& a : s["anyOf"])
      if (validates(v, a, root)) return true;
    return false;
  }
  if (s.contains("enum")) return std::find(s["enum"].begin(), s["enum"].end(), v) != s["enum"].end();
  if (s.contains("const")) return v == s["const"];
  if (s.contains("type")) {
    const nlohmann::json types = s["type"].is_array() ? s["type"] : nlohmann::json::array({s["type"]});
    bool ok = false;
    for (const std::string t : types) {
      ok = ok || (t == "object" && v.is_object()) || (t == "array" && v.is_array()) || (t == "string" && v.is_string()) ||
           (t == "number" && v.is_number()) || (t == "integer" && (v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))) ||
           (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null());
    }
    if (!ok) return false;
  }
  if (v.is_string() && s.contains("maxLength")) {
    size_t cps = 0;
    for (unsigned char ch : v.get<std::string>()) cps += (ch & 0xC0) != 0x80;
    if (cps > s["maxLength"].get<size_t>()) return false;
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return false;
    for (size_t i = 0; i < v.size(); ++i) {
      if (s.contains("prefixItems") && i < s["prefixItems"].size()) {
        if (!validates(v[i], s["prefixItems"][i], root)) return false;
      } else if (s.contains("items") && !validates(v[i], s["items"], root)) {
        return false;
      }
    }
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const std::string k : s["required"])
        if (!v.contains(k)) return false;
    for (const auto& [k, x] : v.items()) {
      if (s.contains("properties") && s["properties"].contains(k)) {
        if (!validates(x, s["properties"][k], root)) return false;
      } else if (s.contains("additionalProperties") && !validates(x, s["additionalProperties"], root)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace dsv3::testutil
