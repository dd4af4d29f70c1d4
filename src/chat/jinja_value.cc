#include "chat/jinja_value.h"

#include <algorithm>
#include <cmath>

#include "chat/jinja_text.h"

namespace dsv3::jinja {

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

Value* Object::find(std::string_view key) {
  for (auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Object::set(const std::string& key, Value value) {
  if (Value* v = find(key)) {
    *v = std::move(value);
  } else {
    items.emplace_back(key, std::move(value));
  }
}

const Value* CallArgs::get(size_t i, std::string_view name) const {
  if (i < positional.size()) return &positional[i];
  for (const auto& [k, v] : keyword)
    if (k == name) return &v;
  return nullptr;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.bool_ = b;
  return v;
}

Value Value::integer(double x) {
  Value v;
  v.kind_ = Kind::Int;
  v.num_ = x;
  return v;
}

Value Value::floating(double x) {
  Value v;
  v.kind_ = Kind::Float;
  v.num_ = x;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.ref_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::array(Array a) {
  Value v;
  v.kind_ = Kind::Array;
  v.ref_ = std::make_shared<Array>(std::move(a));
  return v;
}

Value Value::object(Object o) {
  Value v;
  v.kind_ = Kind::Object;
  v.ref_ = std::make_shared<Object>(std::move(o));
  return v;
}

Value Value::namespace_(Object o) {
  Value v = object(std::move(o));
  v.kind_ = Kind::Namespace;
  return v;
}

Value Value::function(std::string name, std::function<Value(const CallArgs&, Scope&)> f) {
  Value v;
  v.kind_ = Kind::Function;
  v.ref_ = std::make_shared<const Function>(Function{std::move(name), std::move(f)});
  return v;
}

const std::string& Value::str() const {
  DSV3_CHECK(kind_ == Kind::String);
  return *std::get<std::shared_ptr<const std::string>>(ref_);
}

Array& Value::arr() const {
  DSV3_CHECK(kind_ == Kind::Array);
  return *std::get<std::shared_ptr<Array>>(ref_);
}

Object& Value::obj() const {
  DSV3_CHECK(kind_ == Kind::Object || kind_ == Kind::Namespace);
  return *std::get<std::shared_ptr<Object>>(ref_);
}

const Function& Value::fn() const {
  DSV3_CHECK(kind_ == Kind::Function);
  return *std::get<std::shared_ptr<const Function>>(ref_);
}

const void* Value::identity() const {
  return std::visit(
      [](const auto& p) -> const void* {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) {
          return nullptr;
        } else {
          return p.get();
        }
      },
      ref_);
}

namespace {

template <typename J>
Value convert(const J& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(double(j.template get<int64_t>()));
    case nlohmann::json::value_t::number_unsigned: return Value::integer(double(j.template get<uint64_t>()));
    case nlohmann::json::value_t::number_float: {
      const double d = j.template get<double>();
      return std::isfinite(d) && std::floor(d) == d ? Value::integer(d) : Value::floating(d);
    }
    case nlohmann::json::value_t::string: return Value::string(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      Array a;
      a.reserve(j.size());
      for (const auto& e : j) a.push_back(convert(e));
      return Value::array(std::move(a));
    }
    case nlohmann::json::value_t::object: {
      Object o;
      o.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) o.set(it.key(), convert(it.value()));
      return Value::object(std::move(o));
    }
    default: return Value();  // binary / discarded: nothing a template can use
  }
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return convert(j); }
Value from_json(const nlohmann::json& j) { return convert(j); }

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return "UndefinedValue";
    case Value::Kind::None: return "NullValue";
    case Value::Kind::Bool: return "BooleanValue";
    case Value::Kind::Int: return "IntegerValue";
    case Value::Kind::Float: return "FloatValue";
    case Value::Kind::String: return "StringValue";
    case Value::Kind::Array: return "ArrayValue";
    case Value::Kind::Object: return "ObjectValue";
    case Value::Kind::Namespace: return "NamespaceValue";
    case Value::Kind::Function: return "FunctionValue";
  }
  return "?";
}

const char* python_type(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return "Undefined";
    case Value::Kind::None: return "NoneType";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::Array: return "list";
    case Value::Kind::Object: return "dict";
    case Value::Kind::Namespace: return "Namespace";
    case Value::Kind::Function: return "function";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None: return false;
    case Value::Kind::Bool: return v.as_bool();
    case Value::Kind::Int:
    case Value::Kind::Float: return v.number() != 0 && !std::isnan(v.number());
    case Value::Kind::String: return !v.str().empty();
    case Value::Kind::Array: return !v.arr().empty();
    case Value::Kind::Object: return !v.obj().items.empty();
    case Value::Kind::Namespace:
    case Value::Kind::Function: return true;
  }
  return false;
}

std::string display(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return "undefined";
    case Value::Kind::None: return "null";
    case Value::Kind::Bool: return v.as_bool() ? "true" : "false";
    case Value::Kind::Int: return js_number_to_string(v.number());
    case Value::Kind::Float: return js_float_to_string(v.number());
    case Value::Kind::String: return v.str();
    case Value::Kind::Array:
    case Value::Kind::Object:
    case Value::Kind::Namespace: return to_json(v, {}, /*undefined_as_null=*/false);
    case Value::Kind::Function: return "[function " + v.fn().name + "]";
  }
  return "";
}

std::string raw_string(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Float: return js_number_to_string(v.number());
    case Value::Kind::Array: {
      std::string out;
      const Array& a = v.arr();
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ',';
        out += display(a[i]);
      }
      return out;
    }
    case Value::Kind::Object:
    case Value::Kind::Namespace: return "[object Map]";
    default: return display(v);
  }
}

namespace {

void json_into(std::string& out, const Value& v, const JsonOptions& opt, int depth, bool undefined_as_null) {
  const char* item_sep = opt.item_sep ? opt.item_sep : (opt.indent > 0 ? "," : ", ");
  const char* key_sep = opt.key_sep ? opt.key_sep : ": ";
  switch (v.kind()) {
    case Value::Kind::Undefined: out += undefined_as_null ? "null" : "undefined"; return;
    case Value::Kind::None: out += "null"; return;
    case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::Int:
    case Value::Kind::Float: out += std::isfinite(v.number()) ? js_number_to_string(v.number()) : "null"; return;
    case Value::Kind::String: append_json_string(out, v.str(), opt.ensure_ascii); return;
    case Value::Kind::Function: eval_fail("Cannot convert to JSON: FunctionValue");
    default: break;
  }
  std::string base, child;  // the line breaks and indentation before closing / inner items
  if (opt.indent > 0) {
    base.assign(1, '\n').append(size_t(opt.indent) * size_t(depth), ' ');
    child = base;
    child.append(size_t(opt.indent), ' ');
  }
  if (v.is_array()) {
    const Array& a = v.arr();
    out += '[';
    for (size_t i = 0; i < a.size(); ++i) {
      if (i) out += item_sep;
      out += child;
      json_into(out, a[i], opt, depth + 1, undefined_as_null);
    }
    if (!a.empty()) out += base;
    out += ']';
    return;
  }
  std::vector<const std::pair<std::string, Value>*> entries;
  for (const auto& kv : v.obj().items) entries.push_back(&kv);
  if (opt.sort_keys)
    std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
  out += '{';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) out += item_sep;
    out += child;
    append_json_string(out, entries[i]->first, opt.ensure_ascii);
    out += key_sep;
    json_into(out, entries[i]->second, opt, depth + 1, undefined_as_null);
  }
  if (!entries.empty()) out += base;
  out += '}';
}

// JavaScript's type of v.value: 0 undefined, 1 null, 2 boolean, 3 number, 4 string, 5 object.
int js_type(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return 0;
    case Value::Kind::None: return 1;
    case Value::Kind::Bool: return 2;
    case Value::Kind::Int:
    case Value::Kind::Float: return 3;
    case Value::Kind::String: return 4;
    default: return 5;
  }
}

// JavaScript's ToPrimitive for an object operand of ==: a list's join, "[object Map]".
Value to_primitive(const Value& v) { return Value::string(raw_string(v)); }

}  // namespace

std::string to_json(const Value& v, const JsonOptions& opt, bool undefined_as_null) {
  std::string out;
  json_into(out, v, opt, 0, undefined_as_null);
  return out;
}

bool strict_equal(const Value& a, const Value& b) {
  const int ta = js_type(a), tb = js_type(b);
  if (ta != tb) return false;
  switch (ta) {
    case 0:
    case 1: return true;
    case 2: return a.as_bool() == b.as_bool();
    case 3: return a.number() == b.number();
    case 4: return a.str() == b.str();
    default: return a.identity() == b.identity();
  }
}

bool loose_equal(const Value& a, const Value& b) {
  const int ta = js_type(a), tb = js_type(b);
  if (ta == tb) return strict_equal(a, b);
  if (ta <= 1 || tb <= 1) return ta <= 1 && tb <= 1;
  if (ta == 2) return loose_equal(Value::integer(a.as_bool() ? 1 : 0), b);
  if (tb == 2) return loose_equal(a, Value::integer(b.as_bool() ? 1 : 0));
  if (ta == 3 && tb == 4) return a.number() == js_string_to_number(b.str());
  if (ta == 4 && tb == 3) return js_string_to_number(a.str()) == b.number();
  if (ta == 5) return loose_equal(to_primitive(a), b);
  return loose_equal(a, to_primitive(b));
}

int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  using K = Value::Kind;
  if (a.is_none() && b.is_none()) return 0;
  if (a.is_undefined() && b.is_undefined()) return 0;
  if (a.is_none() || b.is_none() || a.is_undefined() || b.is_undefined())
    eval_fail("Cannot compare ", type_name(a), " with ", type_name(b));
  auto numeric = [](const Value& v) { return v.is_number() || v.is(K::Bool); };
  auto num = [](const Value& v) { return v.is(K::Bool) ? (v.as_bool() ? 1.0 : 0.0) : v.number(); };
  if (numeric(a) && numeric(b)) return num(a) < num(b) ? -1 : num(a) > num(b) ? 1 : 0;
  if (a.kind() != b.kind()) eval_fail("Cannot compare different types: ", type_name(a), " and ", type_name(b));
  if (!a.is_string()) eval_fail("Cannot compare type: ", type_name(a));
  const std::string x = case_sensitive ? a.str() : to_lower(a.str());
  const std::string y = case_sensitive ? b.str() : to_lower(b.str());
  return x < y ? -1 : x > y ? 1 : 0;
}

}  // namespace dsv3::jinja
