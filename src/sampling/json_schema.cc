#include "sampling/json_schema.h"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsv3 {

using json::SchemaNode;

namespace {

// Literal spelling of a JSON value as enum/const matching expects it.
std::string spell(const nlohmann::json& v, const std::string& path) {
  try {
    return v.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("JSON Schema value at ", path, " cannot be written as JSON: ", e.what());
  }
}

uint8_t type_of(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object: return json::kTypeObject;
    case nlohmann::json::value_t::array: return json::kTypeArray;
    case nlohmann::json::value_t::string: return json::kTypeString;
    case nlohmann::json::value_t::boolean: return json::kTypeBoolean;
    case nlohmann::json::value_t::null: return json::kTypeNull;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return json::kTypeNumber | json::kTypeInteger;
    case nlohmann::json::value_t::number_float: {
      const double d = v.get<double>();
      return d == static_cast<double>(static_cast<long long>(d)) ? (json::kTypeNumber | json::kTypeInteger)
                                                                   : json::kTypeNumber;
    }
    default: return 0;
  }
}

std::string escape_pointer(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

const std::set<std::string> kAnnotations = {"title", "description", "default", "examples",
                                            "$schema", "$id", "$comment", "format"};
const std::set<std::string> kKeywords = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "minLength", "maxLength", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
    "$defs", "definitions", "nullable"};

}  // namespace

class SchemaCompiler {
 public:
  SchemaCompiler(JsonConstraint& c, const nlohmann::json& root, bool strict) : c_(c), root_(root), strict_(strict) {}

  int32_t compile_root() {
    const int32_t r = compile(root_, "#");
    // Compile unreferenced definitions too, so their errors surface now rather than never.
    if (root_.is_object())
      for (const char* defs : {"$defs", "definitions"})
        if (root_.contains(defs) && root_[defs].is_object())
          for (const auto& [name, sub] : root_[defs].items()) resolve_ref(std::string("#/") + defs + "/" + escape_pointer(name), "#");
    return r;
  }

 private:
  int32_t add(SchemaNode n) {
    c_.nodes_.push_back(std::move(n));
    return static_cast<int32_t>(c_.nodes_.size() - 1);
  }

  static uint32_t count(const nlohmann::json& v, const std::string& path) {
    if (!v.is_number_integer() && !v.is_number_unsigned()) fail("JSON Schema: ", path, " must be a non-negative integer");
    if (v.is_number_integer() && v.get<int64_t>() < 0) fail("JSON Schema: ", path, " must be a non-negative integer");
    const uint64_t u = v.get<uint64_t>();
    return u >= json::kUnbounded ? json::kUnbounded - 1 : static_cast<uint32_t>(u);
  }

  int32_t resolve_ref(const std::string& ref, const std::string& path) {
    if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
    const bool ok = ref == "#" || ref.rfind("#/$defs/", 0) == 0 || ref.rfind("#/definitions/", 0) == 0;
    if (!ok) fail("JSON Schema: unsupported $ref '", ref, "' at ", path, " (only #, #/$defs/... and #/definitions/...)");
    const nlohmann::json::json_pointer ptr(ref.substr(1));
    if (!root_.contains(ptr)) fail("JSON Schema: $ref '", ref, "' at ", path, " points to nothing");
    // Reserve the node first so recursive references find it.
    const int32_t id = add(SchemaNode{});
    refs_[ref] = id;
    const int32_t body = compile(root_.at(ptr), ref);
    if (body == id) fail("JSON Schema: $ref '", ref, "' at ", path, " refers only to itself");
    SchemaNode alias;
    alias.kind = SchemaNode::kUnion;
    alias.alts = {body};
    c_.nodes_[id] = std::move(alias);
    return id;
  }

  int32_t compile(const nlohmann::json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return 0;
      SchemaNode none;
      none.kind = SchemaNode::kUnion;  // no alternatives: nothing matches
      return add(std::move(none));
    }
    if (!s.is_object()) fail("JSON Schema: the schema at ", path, " must be an object or a boolean");
    std::vector<std::string> active;
    for (const auto& [k, v] : s.items()) {
      if (kAnnotations.count(k)) continue;
      if (!kKeywords.count(k)) fail("unsupported JSON Schema keyword '", k, "' at ", path);
      if (k != "$defs" && k != "definitions") active.push_back(k);
    }
    bool nullable = false;
    if (s.contains("nullable")) {
      if (!s["nullable"].is_boolean()) fail("JSON Schema: ", path, "/nullable must be a boolean");
      nullable = s["nullable"].get<bool>();
    }
    auto only = [&](const char* key) {
      for (const auto& k : active)
        if (k != key && k != "nullable") fail("JSON Schema keyword '", k, "' alongside '", key, "' is not supported at ", path);
    };
    auto with_null = [&](int32_t id) {
      if (!nullable) return id;
      SchemaNode u;
      u.kind = SchemaNode::kUnion;
      SchemaNode null;
      null.types = json::kTypeNull;
      u.alts = {id, add(std::move(null))};
      return add(std::move(u));
    };

    if (s.contains("$ref")) {
      only("$ref");
      if (!s["$ref"].is_string()) fail("JSON Schema: ", path, "/$ref must be a string");
      return with_null(resolve_ref(s["$ref"].get<std::string>(), path));
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      only(key);
      const auto& list = s[key];
      if (!list.is_array() || list.empty()) fail("JSON Schema: ", path, "/", key, " must be a non-empty array");
      SchemaNode u;
      u.kind = SchemaNode::kUnion;
      for (size_t i = 0; i < list.size(); ++i) u.alts.push_back(compile(list[i], path + "/" + key + "/" + std::to_string(i)));
      return with_null(add(std::move(u)));
    }
    if (s.contains("allOf")) {
      only("allOf");
      const auto& list = s["allOf"];
      if (!list.is_array() || list.size() != 1) fail("JSON Schema: ", path, "/allOf must hold exactly one schema (intersections are not supported)");
      return with_null(compile(list[0], path + "/allOf/0"));
    }

    uint8_t types = json::kTypeAll;
    if (s.contains("type")) {
      const auto& t = s["type"];
      std::vector<nlohmann::json> names = t.is_array() ? std::vector<nlohmann::json>(t.begin(), t.end()) : std::vector<nlohmann::json>{t};
      types = 0;
      for (const auto& n : names) {
        static const std::map<std::string, uint8_t> kTypes = {
            {"object", json::kTypeObject}, {"array", json::kTypeArray}, {"string", json::kTypeString},
            {"number", json::kTypeNumber | json::kTypeInteger}, {"integer", json::kTypeInteger},
            {"boolean", json::kTypeBoolean}, {"null", json::kTypeNull}};
        if (!n.is_string() || !kTypes.count(n.get<std::string>()))
          fail("JSON Schema: unknown type ", n.dump(), " at ", path, "/type");
        types |= kTypes.at(n.get<std::string>());
      }
      if (types == 0) fail("JSON Schema: empty type list at ", path, "/type");
    }
    if (nullable) types |= json::kTypeNull;

    if (s.contains("enum") || s.contains("const")) {
      std::vector<nlohmann::json> values;
      if (s.contains("enum")) {
        if (!s["enum"].is_array()) fail("JSON Schema: ", path, "/enum must be an array");
        values.assign(s["enum"].begin(), s["enum"].end());
      }
      if (s.contains("const")) {
        if (s.contains("enum")) {
          std::vector<nlohmann::json> both;
          for (const auto& v : values)
            if (v == s["const"]) both.push_back(v);
          values = both;
        } else {
          values = {s["const"]};
        }
      }
      if (nullable) values.push_back(nullptr);
      SchemaNode e;
      e.kind = SchemaNode::kEnum;
      for (const auto& v : values) {
        const uint8_t t = type_of(v);
        const bool integer_only = (types & json::kTypeInteger) && !(types & json::kTypeNumber);
        if ((t & types) == 0 || (integer_only && !(t & json::kTypeInteger))) continue;
        e.literals.push_back(spell(v, path + "/enum"));
      }
      std::sort(e.literals.begin(), e.literals.end());
      e.literals.erase(std::unique(e.literals.begin(), e.literals.end()), e.literals.end());
      return add(std::move(e));
    }

    SchemaNode n;
    n.types = types;
    if (s.contains("minLength")) n.min_length = count(s["minLength"], path + "/minLength");
    if (s.contains("maxLength")) n.max_length = count(s["maxLength"], path + "/maxLength");
    if (n.min_length > n.max_length) fail("JSON Schema: minLength exceeds maxLength at ", path);
    if (s.contains("minItems")) n.min_items = count(s["minItems"], path + "/minItems");
    if (s.contains("maxItems")) n.max_items = count(s["maxItems"], path + "/maxItems");
    if (n.min_items > n.max_items) fail("JSON Schema: minItems exceeds maxItems at ", path);
    if (s.contains("prefixItems")) {
      const auto& p = s["prefixItems"];
      if (!p.is_array()) fail("JSON Schema: ", path, "/prefixItems must be an array");
      for (size_t i = 0; i < p.size(); ++i) n.prefix_items.push_back(compile(p[i], path + "/prefixItems/" + std::to_string(i)));
    }
    if (s.contains("items")) {
      if (s["items"].is_array()) fail("JSON Schema: array-form items at ", path, "/items is not supported (use prefixItems)");
      n.items = s["items"].is_boolean() && !s["items"].get<bool>() ? json::kNoNode : compile(s["items"], path + "/items");
    }

    std::set<std::string> required;
    if (s.contains("required")) {
      const auto& r = s["required"];
      if (!r.is_array()) fail("JSON Schema: ", path, "/required must be an array of strings");
      for (const auto& k : r) {
        if (!k.is_string()) fail("JSON Schema: ", path, "/required must be an array of strings");
        required.insert(k.get<std::string>());
      }
    }
    n.additional = strict_ ? json::kNoNode : 0;
    if (s.contains("additionalProperties")) {
      const auto& a = s["additionalProperties"];
      n.additional = a.is_boolean() ? (a.get<bool>() ? 0 : json::kNoNode) : compile(a, path + "/additionalProperties");
    }
    std::vector<std::pair<std::string, int32_t>> props;
    std::set<std::string> declared;
    if (s.contains("properties")) {
      const auto& p = s["properties"];
      if (!p.is_object()) fail("JSON Schema: ", path, "/properties must be an object");
      for (const auto& [k, v] : p.items()) {
        props.emplace_back(spell(nlohmann::json(k), path + "/properties"), compile(v, path + "/properties/" + escape_pointer(k)));
        declared.insert(k);
      }
    }
    for (const auto& k : required) {
      if (declared.count(k)) continue;
      if (n.additional == json::kNoNode)
        fail("JSON Schema: required property '", k, "' at ", path, " is neither in properties nor allowed by additionalProperties");
      props.emplace_back(spell(nlohmann::json(k), path + "/required"), n.additional);
    }
    if (props.size() > 64) fail("JSON Schema: more than 64 properties at ", path, " are not supported");
    std::sort(props.begin(), props.end());
    for (size_t i = 0; i < props.size(); ++i) {
      n.keys.push_back(props[i].first);
      n.key_nodes.push_back(props[i].second);
      const std::string name = nlohmann::json::parse(props[i].first).get<std::string>();
      if (required.count(name)) n.required |= uint64_t{1} << i;
    }
    return add(std::move(n));
  }

  JsonConstraint& c_;
  const nlohmann::json& root_;
  bool strict_;
  std::map<std::string, int32_t> refs_;
};

namespace {

// Replaces each union's alternatives by the kTyped / kEnum leaves they reach (a union reaching
// itself contributes nothing more: the least fixpoint).
void flatten_unions(std::vector<SchemaNode>& nodes) {
  std::vector<std::vector<int32_t>> leaves(nodes.size());
  for (size_t u = 0; u < nodes.size(); ++u) {
    if (nodes[u].kind != SchemaNode::kUnion) continue;
    std::vector<char> seen(nodes.size(), 0);
    std::vector<int32_t> stack = {static_cast<int32_t>(u)};
    seen[u] = 1;
    while (!stack.empty()) {
      const int32_t x = stack.back();
      stack.pop_back();
      if (nodes[x].kind != SchemaNode::kUnion) {
        leaves[u].push_back(x);
        continue;
      }
      for (int32_t a : nodes[x].alts)
        if (!seen[a]) seen[a] = 1, stack.push_back(a);
    }
    std::sort(leaves[u].begin(), leaves[u].end());
  }
  for (size_t u = 0; u < nodes.size(); ++u)
    if (nodes[u].kind == SchemaNode::kUnion) nodes[u].alts = std::move(leaves[u]);
}

// Which nodes some finite value satisfies (least fixpoint), then removes every way into an
// unsatisfiable part so the recogniser can never accept a prefix without a completion.
void prune_unsatisfiable(std::vector<SchemaNode>& nodes) {
  const size_t n = nodes.size();
  std::vector<char> sat(n, 0);
  std::vector<uint8_t> sat_types(n, 0);
  auto ok = [&](int32_t id) { return id != json::kNoNode && sat[id]; };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < n; ++i) {
      const SchemaNode& s = nodes[i];
      bool now = false;
      if (s.kind == SchemaNode::kEnum) {
        now = !s.literals.empty();
      } else if (s.kind == SchemaNode::kUnion) {
        for (int32_t a : s.alts) now = now || sat[a];
      } else {
        uint8_t t = s.types & (json::kTypeString | json::kTypeNumber | json::kTypeInteger | json::kTypeBoolean | json::kTypeNull);
        if (s.types & json::kTypeArray) {
          bool arr = true;
          for (uint32_t k = 0; k < s.min_items && arr; ++k)
            arr = ok(k < s.prefix_items.size() ? s.prefix_items[k] : s.items);
          if (arr) t |= json::kTypeArray;
        }
        if (s.types & json::kTypeObject) {
          bool obj = true;
          for (size_t k = 0; k < s.keys.size(); ++k)
            if ((s.required >> k) & 1) obj = obj && ok(s.key_nodes[k]);
          if (obj) t |= json::kTypeObject;
        }
        sat_types[i] = t;
        now = t != 0;
      }
      if (now && !sat[i]) sat[i] = 1, changed = true;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    SchemaNode& s = nodes[i];
    if (s.kind == SchemaNode::kUnion) {
      std::vector<int32_t> keep;
      for (int32_t a : s.alts)
        if (sat[a]) keep.push_back(a);
      s.alts = std::move(keep);
    } else if (s.kind == SchemaNode::kTyped) {
      s.types = sat_types[i];
      uint32_t usable = 0;
      while (usable < s.max_items && ok(usable < s.prefix_items.size() ? s.prefix_items[usable] : s.items)) {
        if (usable >= s.prefix_items.size()) { usable = s.max_items; break; }  // `items` repeats
        ++usable;
      }
      s.max_items = std::min(s.max_items, usable);
      for (size_t k = 0; k < s.keys.size(); ++k)
        if (!ok(s.key_nodes[k])) s.unusable |= uint64_t{1} << k;
      if (s.additional != json::kNoNode && !sat[s.additional]) s.additional = json::kNoNode;
    }
  }
}

void finish(std::vector<SchemaNode>& nodes, int32_t root) {
  flatten_unions(nodes);
  prune_unsatisfiable(nodes);
  const SchemaNode& r = nodes[root];
  const bool empty = (r.kind == SchemaNode::kUnion && r.alts.empty()) || (r.kind == SchemaNode::kEnum && r.literals.empty()) ||
                     (r.kind == SchemaNode::kTyped && r.types == 0);
  if (empty) fail("JSON Schema: no JSON value satisfies the schema");
}

}  // namespace

namespace {
// Node 0: any value; node 1: the literals true / false / null (read by the recogniser for typed
// booleans and nulls).
void add_builtins(std::vector<SchemaNode>& nodes) {
  nodes.emplace_back();
  SchemaNode lit;
  lit.kind = SchemaNode::kEnum;
  lit.literals = {"false", "null", "true"};
  nodes.push_back(std::move(lit));
}
}  // namespace

std::shared_ptr<const JsonConstraint> JsonConstraint::compile_object() {
  auto c = std::shared_ptr<JsonConstraint>(new JsonConstraint());
  add_builtins(c->nodes_);
  SchemaNode obj;
  obj.types = json::kTypeObject;
  c->nodes_.push_back(std::move(obj));
  c->root_ = static_cast<int32_t>(c->nodes_.size() - 1);
  finish(c->nodes_, c->root_);
  return c;
}

std::shared_ptr<const JsonConstraint> JsonConstraint::compile_schema(const nlohmann::json& schema, bool strict) {
  auto c = std::shared_ptr<JsonConstraint>(new JsonConstraint());
  add_builtins(c->nodes_);
  SchemaCompiler comp(*c, schema, strict);
  c->root_ = comp.compile_root();
  finish(c->nodes_, c->root_);
  return c;
}

std::shared_ptr<const JsonConstraint> JsonConstraint::from_response_format(const nlohmann::json& rf) {
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    fail("response_format must be an object with a string 'type'");
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return nullptr;
  if (type == "json_object") return compile_object();
  if (type != "json_schema") fail("response_format type '", type, "' is not supported (text, json_object, json_schema)");
  if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
    fail("response_format json_schema: missing the 'json_schema' object");
  const auto& js = rf["json_schema"];
  if (!js.contains("name") || !js["name"].is_string()) fail("response_format json_schema: missing the string 'name'");
  bool strict = false;
  if (js.contains("strict") && !js["strict"].is_null()) {
    if (!js["strict"].is_boolean()) fail("response_format json_schema: 'strict' must be a boolean");
    strict = js["strict"].get<bool>();
  }
  // OpenAI treats a missing schema as "any JSON value"; an object is what json mode promises.
  if (!js.contains("schema")) return compile_object();
  return compile_schema(js["schema"], strict);
}

}  // namespace dsv3
