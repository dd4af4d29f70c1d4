// Filters and tests. Behaviour follows @huggingface/jinja where it defines one (tojson spacing,
// join of raw values, sort / dictsort ordering, selectattr on missing attributes, ...); the
// filters it lacks (d, count, e / escape, round, select, reject, map(filter), first / last /
// reverse / list on strings) follow Python's Jinja.
#include <algorithm>
#include <cmath>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace dsv3::jinja {
namespace {

[[noreturn]] void wrong_type(const std::string& filter, const Value& v) {
  eval_fail("Cannot apply filter \"", filter, "\" to type: ", type_name(v));
}

bool bool_arg(const CallArgs& args, size_t i, const char* name, bool fallback) {
  const Value* v = args.get(i, name);
  if (!v) return fallback;
  if (!v->is(Value::Kind::Bool)) eval_fail(name, " must be a boolean");
  return v->as_bool();
}

Value to_json_filter(const Value& operand, const CallArgs& args) {
  JsonOptions opt;
  const Value* indent = args.get(0, "indent");
  if (indent && !indent->is_none()) {
    if (!indent->is(Value::Kind::Int)) eval_fail("If set, indent must be a number");
    opt.indent = int(indent->number());
  }
  const Value* ea = args.get(SIZE_MAX, "ensure_ascii");
  if (ea && !ea->is(Value::Kind::Bool)) eval_fail("If set, ensure_ascii must be a boolean");
  opt.ensure_ascii = ea && ea->as_bool();
  const Value* sk = args.get(SIZE_MAX, "sort_keys");
  if (sk && !sk->is(Value::Kind::Bool)) eval_fail("If set, sort_keys must be a boolean");
  opt.sort_keys = sk && sk->as_bool();
  const Value* sep = args.get(SIZE_MAX, "separators");
  if (sep && !sep->is_none()) {
    if (!sep->is_array() || sep->arr().size() != 2 || !sep->arr()[0].is_string() || !sep->arr()[1].is_string())
      eval_fail("separators must be a tuple of two strings");
    opt.item_sep = sep->arr()[0].str().c_str();
    opt.key_sep = sep->arr()[1].str().c_str();
  }
  return Value::string(to_json(operand, opt));
}

// Array.prototype.join on the underlying values: none and undefined join as "".
std::string join_values(const Array& a, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < a.size(); ++i) {
    if (i) out += sep;
    if (!a[i].is_none() && !a[i].is_undefined()) out += raw_string(a[i]);
  }
  return out;
}

// item.a.b (dicts by key, lists by index), as map(attribute=) and sort(attribute=) read it.
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (v.has_fields()) {
      const Value* f = v.obj().find(part);
      v = f ? *f : Value();
    } else if (v.is_array()) {
      char* end = nullptr;
      const long i = std::strtol(part.c_str(), &end, 10);
      if (part.empty() || *end || i < 0 || size_t(i) >= v.arr().size()) return Value();
      v = v.arr()[size_t(i)];
    } else {
      return Value();
    }
    if (dot == std::string::npos) return v;
    pos = dot + 1;
  }
}

Value sort_filter(const Value& operand, const CallArgs& args) {
  const bool reverse = bool_arg(args, 0, "reverse", false);
  const bool case_sensitive = bool_arg(args, 1, "case_sensitive", false);
  const Value* attr = args.get(2, "attribute");
  if (attr && !attr->is_string() && !attr->is(Value::Kind::Int) && !attr->is_none())
    eval_fail("attribute must be a string, integer, or null");
  std::string path;
  if (attr && !attr->is_none()) path = attr->is_string() ? attr->str() : js_number_to_string(attr->number());
  Array out = operand.arr();
  auto key = [&](const Value& v) { return path.empty() ? v : attribute_path(v, path); };
  std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
    const int c = compare_values(key(a), key(b), case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return Value::array(std::move(out));
}

Value select_filter(const std::string& name, const Value& operand, const CallArgs& args) {
  const bool by_attr = name == "selectattr" || name == "rejectattr";
  const bool keep = name == "select" || name == "selectattr";
  if (!operand.is_array()) wrong_type(name, operand);
  if (by_attr)
    for (const Value& item : operand.arr())
      if (!item.has_fields()) eval_fail("`", name, "` can only be applied to array of objects");
  size_t next = 0;
  std::string attr;
  if (by_attr) {
    if (args.positional.empty() || !args.positional[0].is_string()) eval_fail("arguments of `", name, "` must be strings");
    attr = args.positional[0].str();
    next = 1;
  }
  std::string test;
  CallArgs test_args;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) eval_fail("the test name of `", name, "` must be a string");
    test = args.positional[next].str();
    test_args.positional.assign(args.positional.begin() + ptrdiff_t(next) + 1, args.positional.end());
  }
  Array out;
  for (const Value& item : operand.arr()) {
    bool result;
    if (by_attr) {
      const Value* a = item.obj().find(attr);  // a missing attribute never passes
      result = a ? (test.empty() ? truthy(*a) : apply_test(test, *a, test_args)) : false;
    } else {
      result = test.empty() ? truthy(item) : apply_test(test, item, test_args);
    }
    if (result == keep) out.push_back(item);
  }
  return Value::array(std::move(out));
}

Value map_filter(const Value& operand, const CallArgs& args, Scope& scope) {
  if (!operand.is_array()) wrong_type("map", operand);
  Array out;
  if (const Value* attr = args.get(SIZE_MAX, "attribute")) {
    if (!attr->is_string()) eval_fail("attribute must be a string");
    const Value* def = args.get(SIZE_MAX, "default");
    for (const Value& item : operand.arr()) {
      if (!item.has_fields()) eval_fail("items in map must be an object");
      const Value v = attribute_path(item, attr->str());
      out.push_back(v.is_undefined() && def ? *def : v);
    }
    return Value::array(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string())
    eval_fail("`map` needs attribute= or the name of a filter");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : operand.arr()) out.push_back(apply_filter(args.positional[0].str(), true, item, rest, scope));
  return Value::array(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Python's str(value) for the filters that convert anything to a string.
std::string python_str(const Value& v) {
  if (v.is_undefined()) return "";
  if (v.is_none()) return "None";
  return display(v);
}

Value indent_filter(const Value& operand, const CallArgs& args) {
  const Value* w = args.get(0, "width");
  std::string pad(4, ' ');
  if (w && w->is(Value::Kind::Int)) {
    pad = std::string(size_t(std::max(0.0, w->number())), ' ');
  } else if (w && w->is_string()) {
    pad = w->str();
  } else if (w) {
    eval_fail("width must be a number");
  }
  const Value* first = args.get(1, "first");
  const Value* blank = args.get(2, "blank");
  const bool indent_first = first && truthy(*first), indent_blank = blank && truthy(*blank);
  const std::string& s = operand.str();
  std::string out;
  size_t pos = 0;
  for (size_t line = 0;; ++line) {
    const size_t nl = s.find('\n', pos);
    const std::string part = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if ((line > 0 || indent_first) && (!part.empty() || indent_blank)) out += pad;
    out += part;
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
  }
  return Value::string(std::move(out));
}

Value round_filter(const Value& operand, const CallArgs& args) {
  if (!operand.is_number()) wrong_type("round", operand);
  const Value* p = args.get(0, "precision");
  const Value* m = args.get(1, "method");
  const double digits = p && p->is_number() ? p->number() : 0;
  const std::string method = m && m->is_string() ? m->str() : "common";
  const double scale = std::pow(10.0, digits), x = operand.number() * scale;
  double r;
  if (method == "common") {
    r = std::nearbyint(x);  // Python's round: ties to even
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else {
    eval_fail("method must be common, ceil or floor");
  }
  r /= scale;
  return operand.is(Value::Kind::Int) && method == "common" ? Value::integer(r) : Value::floating(r);
}

}  // namespace

Value apply_filter(const std::string& name, bool called, const Value& v, const CallArgs& args, Scope& scope) {
  using K = Value::Kind;
  if (name == "safe") return v;
  if (name == "tojson") return to_json_filter(v, args);
  if (name == "default" || name == "d") {
    const Value* def = args.get(0, "default_value");
    if (v.is_undefined() || (bool_arg(args, 1, "boolean", false) && !truthy(v))) return def ? *def : Value::string("");
    return v;
  }
  if (name == "string") return Value::string(python_str(v));
  if (name == "e" || name == "escape") return Value::string(html_escape(python_str(v)));
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value::integer(double(utf16_length(v.str())));
    if (v.is_array()) return Value::integer(double(v.arr().size()));
    if (v.is_object()) return Value::integer(double(v.obj().items.size()));
    wrong_type(name, v);
  }
  if (name == "int" || name == "float") {
    const bool to_int = name == "int";
    const Value* def = args.get(0, "default");
    if (v.is_string()) {
      bool ok;
      const double x = to_int ? js_parse_int(v.str(), ok) : js_parse_float(v.str(), ok);
      if (!ok) return def ? *def : to_int ? Value::integer(0) : Value::floating(0);
      return to_int ? Value::integer(x) : Value::floating(x);
    }
    if (v.is_number()) return to_int ? Value::integer(std::trunc(v.number())) : Value::floating(v.number());
    if (v.is(K::Bool)) return to_int ? Value::integer(v.as_bool()) : Value::floating(v.as_bool());
    wrong_type(name, v);
  }
  if (name == "join") {
    const Value* sep = args.get(0, "d");
    if (!sep) sep = args.get(SIZE_MAX, "separator");
    if (sep && !sep->is_string()) eval_fail("separator must be a string");
    const std::string d = sep ? sep->str() : "";
    if (v.is_array()) return Value::string(join_values(v.arr(), d));
    if (v.is_string()) {
      if (!called) return v;
      std::string out;
      const std::vector<std::string> cps = split_code_points(v.str());
      for (size_t i = 0; i < cps.size(); ++i) out += (i ? d : "") + cps[i];
      return Value::string(std::move(out));
    }
    wrong_type(name, v);
  }
  if (v.is_string()) {
    const std::string& s = v.str();
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize")
      return get_member(v, Value::string(name)).fn().call(args, scope);
    if (name == "trim") return get_member(v, Value::string("strip")).fn().call(args, scope);
    if (name == "replace") return get_member(v, Value::string("replace")).fn().call(args, scope);
    if (name == "indent") return indent_filter(v, args);
    if (name == "first" || name == "last" || name == "list" || name == "reverse") {
      std::vector<std::string> cps = split_code_points(s);
      if (name == "first") return cps.empty() ? Value() : Value::string(cps.front());
      if (name == "last") return cps.empty() ? Value() : Value::string(cps.back());
      if (name == "reverse") {
        std::string out;
        for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
        return Value::string(std::move(out));
      }
      Array out;
      for (auto& c : cps) out.push_back(Value::string(std::move(c)));
      return Value::array(std::move(out));
    }
  }
  if (v.is_array()) {
    const Array& a = v.arr();
    if (name == "list") return v;
    if (name == "first") return a.empty() ? Value() : a.front();
    if (name == "last") return a.empty() ? Value() : a.back();
    if (name == "reverse") return Value::array(Array(a.rbegin(), a.rend()));
    if (name == "sort") return sort_filter(v, args);
    if (name == "unique") {
      Array out;
      for (const Value& x : a)
        if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return strict_equal(x, y); })) out.push_back(x);
      return Value::array(std::move(out));
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr")
      return select_filter(name, v, args);
    if (name == "map") return map_filter(v, args, scope);
  }
  if (v.is_number()) {
    if (name == "abs") return v.is(K::Int) ? Value::integer(std::fabs(v.number())) : Value::floating(std::fabs(v.number()));
    if (name == "round") return round_filter(v, args);
  }
  if (v.is_object()) {
    if (name == "items" || name == "keys" || name == "values" || name == "dictsort" || name == "get")
      return get_member(v, Value::string(name)).fn().call(args, scope);
    if (name == "list") return get_member(v, Value::string("keys")).fn().call(args, scope);
  }
  if (v.is(K::Bool) && name == "bool") return v;
  static const char* known[] = {"upper",  "lower", "title", "capitalize", "trim",   "replace",    "indent",
                                "first",  "last",  "list",  "reverse",    "sort",   "unique",     "select",
                                "reject", "map",   "abs",   "round",      "items",  "selectattr", "rejectattr",
                                "keys",   "values", "dictsort", "bool"};
  if (std::find(std::begin(known), std::end(known), name) != std::end(known)) wrong_type(name, v);
  eval_fail("Unknown filter: ", name);
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& args) {
  using K = Value::Kind;
  auto arg = [&]() -> const Value& {
    if (args.positional.empty()) eval_fail("test '", name, "' needs an argument");
    return args.positional[0];
  };
  auto ordered = [&](const char* op) {
    const Value& b = arg();
    if (!v.is_number() || !b.is_number()) eval_fail("test '", name, "' compares numbers, got ", type_name(v));
    const std::string o = op;
    const double x = v.number(), y = b.number();
    return o == "<" ? x < y : o == "<=" ? x <= y : o == ">" ? x > y : x >= y;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is(K::Bool);
  if (name == "true") return v.is(K::Bool) && v.as_bool();
  if (name == "false") return v.is(K::Bool) && !v.as_bool();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is(K::Int);
  if (name == "float") return v.is(K::Float);
  if (name == "iterable") return v.is_array() || v.is_string();
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (name == "callable") return v.is(K::Function);
  if (name == "lower") return v.is_string() && v.str() == to_lower(v.str());
  if (name == "upper") return v.is_string() && v.str() == to_upper(v.str());
  if (name == "odd" || name == "even") {
    if (!v.is(K::Int)) eval_fail("cannot ", name, " on ", type_name(v));
    const bool odd = std::fmod(v.number(), 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "divisibleby") {
    const Value& b = arg();
    if (!v.is_number() || !b.is_number() || b.number() == 0) eval_fail("divisibleby needs non-zero numbers");
    return std::fmod(v.number(), b.number()) == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return strict_equal(v, arg());
  if (name == "ne" || name == "!=") return !strict_equal(v, arg());
  if (name == "lt" || name == "lessthan" || name == "<") return ordered("<");
  if (name == "le" || name == "<=") return ordered("<=");
  if (name == "gt" || name == "greaterthan" || name == ">") return ordered(">");
  if (name == "ge" || name == ">=") return ordered(">=");
  if (name == "in") {
    const Value& c = arg();
    if (c.is_array())
      return std::any_of(c.arr().begin(), c.arr().end(), [&](const Value& x) { return strict_equal(x, v); });
    if (c.is_string() && v.is_string()) return c.str().find(v.str()) != std::string::npos;
    if (c.is_object() && v.is_string()) return c.obj().find(v.str()) != nullptr;
    return false;
  }
  eval_fail("Unknown test: ", name);
}

}  // namespace dsv3::jinja
