// Runtime values of the Jinja renderer, with the semantics of @huggingface/jinja (the reference
// the chat-template goldens come from): numbers are doubles tagged integer or float, strings
// are UTF-8, arrays and objects are shared and mutable (a copy of a Value aliases the same
// list, as in JavaScript and Python), objects keep insertion order.
//
// Where Python's Jinja (what transformers, vLLM and SGLang render with) raises and JavaScript
// would print an artefact, we raise too: `+` joins a string only with a string and a list only
// with a list ("can only concatenate str (not \"list\") to str"), never "a[object Map]" or a
// list joined by commas. `~`, |string and {{ }} keep @huggingface/jinja's spelling of
// non-string values (true, 1,2, JSON), which differs from Python's str() (True, [1, 2]); the
// chat templates we serve apply them to strings only, and the server hands templates string
// contents and string tool-call arguments.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsv3::jinja {

class Value;
struct Scope;
using Array = std::vector<Value>;

//! An insertion-ordered string-keyed map (dicts, namespaces, keyword arguments). Lookups are
//! linear: template objects are small.
struct Object {
  std::vector<std::pair<std::string, Value>> items;

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  //! Replaces the value of an existing key in place, else appends.
  void set(const std::string& key, Value value);
};

//! Arguments of a call, a filter or a test: positional values and ordered keyword values.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  //! Positional argument `i`, else keyword `name`, else nullptr.
  const Value* get(size_t i, std::string_view name) const;
};

//! A callable: a built-in global, a method bound to its receiver, or a macro. The scope is the
//! caller's (macros see the variables at the call site, as @huggingface/jinja does).
struct Function {
  std::string name;
  std::function<Value(const CallArgs&, Scope&)> call;
};

//! A runtime error raised where no source position is known (inside a built-in); the evaluator
//! adds "name:LINE:COL: " and rethrows it as a plain dsv3::Error.
class EvalError : public Error {
 public:
  explicit EvalError(const std::string& what) : Error(what) {}
};

template <typename... Args>
[[noreturn]] void eval_fail(Args&&... args) {
  throw EvalError(detail::concat(std::forward<Args>(args)...));
}

class Value {
 public:
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, Array, Object, Namespace, Function };

  Value() = default;  //!< undefined
  static Value none();
  static Value boolean(bool b);
  static Value integer(double v);  //!< numbers are doubles, as in JavaScript
  static Value floating(double v);
  static Value string(std::string s);
  static Value array(Array a = {});
  static Value object(Object o = {});
  static Value namespace_(Object o = {});
  static Value function(std::string name, std::function<Value(const CallArgs&, Scope&)> f);

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_array() const { return kind_ == Kind::Array; }
  //! A dict (not a namespace).
  bool is_object() const { return kind_ == Kind::Object; }
  //! A dict or a namespace: something with attributes stored by name.
  bool has_fields() const { return kind_ == Kind::Object || kind_ == Kind::Namespace; }

  bool as_bool() const { return bool_; }
  double number() const { return num_; }
  const std::string& str() const;
  Array& arr() const;
  Object& obj() const;
  const Function& fn() const;
  //! Identity of the shared payload (arrays, objects, functions), for JavaScript's ===.
  const void* identity() const;

 private:
  Kind kind_ = Kind::Undefined;
  bool bool_ = false;
  double num_ = 0;
  std::variant<std::monostate, std::shared_ptr<const std::string>, std::shared_ptr<Array>, std::shared_ptr<Object>,
               std::shared_ptr<const Function>>
      ref_;
};

//! JSON values as the template sees them; integral floats become integers (JavaScript's
//! JSON.parse does not keep 2.0 apart from 2). ordered_json keeps the caller's key order
//! (what tojson prints); plain nlohmann::json has already sorted its keys.
Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

//! "IntegerValue", "StringValue", ... (@huggingface/jinja's names, used in error messages).
const char* type_name(const Value& v);
//! Python's name of the value's type ("str", "int", "list", "dict", ...), for the errors Python
//! Jinja raises where @huggingface/jinja would print a JavaScript artefact.
const char* python_type(const Value& v);
//! Python/JavaScript truthiness: empty strings, 0, empty lists and dicts, none and undefined
//! are false; a namespace is always true.
bool truthy(const Value& v);
//! JavaScript's RuntimeValue.toString(), what {{ v }} prints: floats as "1.0", booleans as
//! "true", lists and dicts as JSON; "null" / "undefined" (output skips none and undefined).
std::string display(const Value& v);
//! JavaScript's String(v.value), used by ~ and |string: floats as "1", lists joined by ",".
std::string raw_string(const Value& v);

struct JsonOptions {
  int indent = 0;  //!< 0: one line
  bool ensure_ascii = false;
  bool sort_keys = false;
  const char* item_sep = nullptr;  //!< nullptr: ", " (or "," when indenting)
  const char* key_sep = nullptr;   //!< nullptr: ": "
};
//! The tojson filter: Python json.dumps spacing; undefined prints as null (or "undefined" for
//! display()).
std::string to_json(const Value& v, const JsonOptions& opt = {}, bool undefined_as_null = true);

//! JavaScript's == on the underlying values (the template's ==): none == undefined, 1 == 1.0,
//! "1" == 1, lists and dicts only equal themselves.
bool loose_equal(const Value& a, const Value& b);
//! JavaScript's === (list membership `in`, unique).
bool strict_equal(const Value& a, const Value& b);
//! Ordering for sort / dictsort: numbers (and booleans) numerically, strings (lower-cased
//! unless case_sensitive); none only with none. Throws EvalError for other mixes.
int compare_values(const Value& a, const Value& b, bool case_sensitive);

}  // namespace dsv3::jinja
