// What a constrained JSON output may be: `response_format` {"type":"json_object"} or a JSON Schema
// subset, compiled once into a graph of schema nodes that the byte-level recogniser
// (json_grammar.h) walks. Immutable after compilation, so one compiled constraint can be shared by
// any number of requests and threads.
//
// Supported schema keywords: type (a name or a list), properties, required, additionalProperties
// (false, true or a schema), items (a schema or false), prefixItems, minItems, maxItems,
// minLength, maxLength (in code points), enum, const, anyOf, oneOf (both as a union: oneOf's
// exclusivity is not enforced), allOf with one element, $ref to "#", "#/$defs/<name>" or
// "#/definitions/<name>" (recursion allowed), $defs, definitions, nullable. Ignored annotations:
// title, description, default, examples, $schema, $id, $comment, format. Any other keyword is a
// dsv3::Error naming it and its JSON pointer path.
//
// Choices the generated text is held to (each a subset of what the schema accepts):
// - additionalProperties absent: no extra keys in strict mode, any extra key with any value
//   otherwise (JSON Schema's own default). Each declared property appears at most once, in any
//   order; a declared key is only recognised in the spelling nlohmann's dump() gives it (no
//   gratuitous escapes: where extra keys are allowed, another spelling counts as an extra key),
//   and duplicates among extra keys are not prevented.
// - enum / const values must be written exactly as compact dump() writes them (no whitespace, same
//   escapes and number spelling). Values whose JSON type a sibling `type` excludes are dropped;
//   other sibling keywords of enum are not applied to the values.
// - "integer" means digits without fraction or exponent.
// - Parts of a schema that no value can satisfy (e.g. items {"enum": []}) are pruned, so the
//   recogniser never walks into a dead end; a root that accepts nothing is an error.
// - At most 64 properties per object schema.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dsv3 {

namespace json {

enum TypeBit : uint8_t {
  kTypeObject = 1,
  kTypeArray = 2,
  kTypeString = 4,
  kTypeNumber = 8,   // any JSON number
  kTypeInteger = 16, // digits only (used when kTypeNumber is absent)
  kTypeBoolean = 32,
  kTypeNull = 64,
  kTypeAll = 127,
};

constexpr int32_t kNoNode = -1;
constexpr uint32_t kUnbounded = 0xFFFFFFFFu;

//! One compiled schema. kTyped: a value of one of `types`, with per-type constraints. kEnum: one of
//! the literal spellings in `literals` (sorted, unique). kUnion: a value any leaf of `alts`
//! accepts (alts are kTyped / kEnum nodes only, flattened at compile time).
struct SchemaNode {
  enum Kind : uint8_t { kTyped, kEnum, kUnion };
  Kind kind = kTyped;
  uint8_t types = kTypeAll;
  // Strings (code points).
  uint32_t min_length = 0, max_length = kUnbounded;
  // Arrays: item i has schema prefix_items[i], then `items` (kNoNode: no more items).
  std::vector<int32_t> prefix_items;
  int32_t items = 0;
  uint32_t min_items = 0, max_items = kUnbounded;
  // Objects: keys are the properties' names spelled as JSON strings (quotes included), sorted
  // bytewise; key_nodes[i] is key i's schema; bit i of `required` says key i is required, of
  // `unusable` that no value of its schema exists (the key may never be written).
  std::vector<std::string> keys;
  std::vector<int32_t> key_nodes;
  uint64_t required = 0, unusable = 0;
  int32_t additional = 0;  // schema of extra keys' values; kNoNode: no extra keys
  // kEnum.
  std::vector<std::string> literals;
  // kUnion.
  std::vector<int32_t> alts;
};

}  // namespace json

class JsonConstraint {
 public:
  //! {"type":"json_object"}: any JSON object.
  static std::shared_ptr<const JsonConstraint> compile_object();
  //! A JSON Schema (the subset above). strict: OpenAI's json_schema.strict, which only changes
  //! the default of additionalProperties to false. Throws dsv3::Error naming the offending
  //! keyword and its path (e.g. "unsupported JSON Schema keyword 'pattern' at
  //! #/properties/name").
  static std::shared_ptr<const JsonConstraint> compile_schema(const nlohmann::json& schema, bool strict = false);
  //! An OpenAI `response_format` object: {"type":"text"} gives nullptr (no constraint),
  //! {"type":"json_object"}, or {"type":"json_schema","json_schema":{"name":..,"schema":{..},
  //! "strict":..}}. Throws dsv3::Error for anything else.
  static std::shared_ptr<const JsonConstraint> from_response_format(const nlohmann::json& response_format);

  // The compiled graph, read by the recogniser. Node 0 is always "any JSON value".
  const std::vector<json::SchemaNode>& nodes() const { return nodes_; }
  int32_t root() const { return root_; }

 private:
  friend class SchemaCompiler;
  JsonConstraint() = default;
  std::vector<json::SchemaNode> nodes_;
  int32_t root_ = 0;
};

}  // namespace dsv3
