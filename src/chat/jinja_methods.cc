// Member access, the methods of strings, dicts and lists, and the global functions.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace dsv3::jinja {
namespace {

using Method = Value (*)(const Value& self, const CallArgs& args);

const std::string& string_arg(const CallArgs& args, size_t i, const char* name, const char* method) {
  const Value* v = args.get(i, name);
  if (!v || !v->is_string()) eval_fail(method, "() argument '", name, "' must be a string");
  return v->str();
}

bool is_ascii_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Python's str.strip(chars) family; without chars, JavaScript's trim (what the reference does).
Value strip(const Value& self, const CallArgs& args, bool left, bool right) {
  const std::string& s = self.str();
  const Value* chars = args.get(0, "chars");
  if (!chars || chars->is_none() || chars->is_undefined()) {
    std::string_view v = s;
    if (left) v = js_trim_start(v);
    if (right) v = js_trim_end(v);
    return Value::string(std::string(v));
  }
  if (!chars->is_string()) eval_fail("strip() argument must be a string or none");
  const std::vector<std::string> set = split_code_points(chars->str());
  std::vector<std::string> cps = split_code_points(s);
  auto in_set = [&](const std::string& c) { return std::find(set.begin(), set.end(), c) != set.end(); };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && in_set(cps[b])) ++b;
  if (right)
    while (e > b && in_set(cps[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return Value::string(std::move(out));
}

bool affix(const Value& self, const CallArgs& args, bool start, const char* method) {
  const Value* p = args.get(0, "prefix");
  if (!p) eval_fail(method, "() requires at least one argument");
  const std::string& s = self.str();
  auto test = [&](const Value& x) {
    if (!x.is_string()) eval_fail(method, "() tuple elements must be strings");
    const std::string& a = x.str();
    return a.size() <= s.size() && (start ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0);
  };
  if (p->is_string()) return test(*p);
  if (p->is_array()) {
    for (const Value& x : p->arr())
      if (test(x)) return true;
    return false;
  }
  eval_fail(method, "() argument must be a string or tuple of strings");
}

Value split(const Value& self, const CallArgs& args) {
  const Value* sep = args.get(0, "sep");
  const Value* max_v = args.get(1, "maxsplit");
  if (sep && !sep->is_string() && !sep->is_none()) eval_fail("sep argument must be a string or null");
  if (max_v && !max_v->is(Value::Kind::Int)) eval_fail("maxsplit argument must be a number");
  const double maxsplit = max_v ? max_v->number() : -1;
  Array out;
  const std::string& s = self.str();
  if (!sep || sep->is_none()) {
    const std::string_view text = js_trim_start(s);
    size_t i = 0;
    while (i < text.size()) {
      const size_t start = i;
      while (i < text.size() && !js_space_at(text, i)) next_code_point(text, i);
      if (maxsplit != -1 && double(out.size()) >= maxsplit) {
        out.push_back(Value::string(std::string(text.substr(start))));
        break;
      }
      out.push_back(Value::string(std::string(text.substr(start, i - start))));
      i += js_space_at(text, i);
    }
    return Value::array(std::move(out));
  }
  const std::string& d = sep->str();
  if (d.empty()) eval_fail("empty separator");
  std::vector<std::string> parts;
  for (size_t pos = 0;;) {
    const size_t hit = s.find(d, pos);
    if (hit == std::string::npos) {
      parts.push_back(s.substr(pos));
      break;
    }
    parts.push_back(s.substr(pos, hit - pos));
    pos = hit + d.size();
  }
  if (maxsplit != -1 && double(parts.size()) > maxsplit) {
    const size_t keep = size_t(std::max(0.0, maxsplit));
    std::string rest;
    for (size_t i = keep; i < parts.size(); ++i) rest += (i > keep ? d : "") + parts[i];
    parts.resize(keep);
    parts.push_back(rest);
  }
  for (std::string& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::array(std::move(out));
}

Value str_replace(const Value& self, const CallArgs& args) {
  const Value* old_v = args.get(0, "old");
  const Value* new_v = args.get(1, "new");
  if (!old_v || !new_v) eval_fail("replace() requires at least two arguments");
  if (!old_v->is_string() || !new_v->is_string()) eval_fail("replace() arguments must be strings");
  const Value* count_v = args.get(2, "count");
  if (count_v && !count_v->is(Value::Kind::Int) && !count_v->is_none())
    eval_fail("replace() count argument must be a number or null");
  double remaining = (!count_v || count_v->is_none() || count_v->number() < 0) ? INFINITY : count_v->number();
  const std::string &s = self.str(), &o = old_v->str(), &n = new_v->str();
  std::string out;
  if (o.empty()) {  // insert at every code point boundary, the ends included
    size_t i = 0;
    while (true) {
      if (remaining > 0) out += n, --remaining;
      if (i >= s.size()) break;
      const size_t start = i;
      next_code_point(s, i);
      out.append(s, start, i - start);
    }
    return Value::string(std::move(out));
  }
  size_t pos = 0;
  while (remaining > 0) {
    const size_t hit = s.find(o, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += n;
    pos = hit + o.size();
    --remaining;
  }
  out.append(s, pos);
  return Value::string(std::move(out));
}

// Python's str.format with {} / {0} / {name} fields and {{ }} escapes (no format specs).
Value str_format(const Value& self, const CallArgs& args) {
  const std::string& s = self.str();
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((s[i] == '{' || s[i] == '}') && i + 1 < s.size() && s[i + 1] == s[i]) {
      out += s[i++];
      continue;
    }
    if (s[i] != '{') {
      out += s[i];
      continue;
    }
    const size_t close = s.find('}', i);
    if (close == std::string::npos) eval_fail("format(): single '{' encountered in format string");
    const std::string field = s.substr(i + 1, close - i - 1);
    const Value* v = nullptr;
    if (field.empty()) {
      v = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
      ++auto_index;
    } else if (std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      const size_t k = std::stoul(field);
      v = k < args.positional.size() ? &args.positional[k] : nullptr;
    } else {
      v = args.get(SIZE_MAX, field);
    }
    if (!v) eval_fail("format(): no value for field '{", field, "}'");
    out += v->is_string() ? v->str() : display(*v);
    i = close;
  }
  return Value::string(std::move(out));
}

Value str_method(const std::string& name, const Value& self, const CallArgs& args) {
  const std::string& s = self.str();
  if (name == "upper") return Value::string(to_upper(s));
  if (name == "lower") return Value::string(to_lower(s));
  if (name == "strip") return strip(self, args, true, true);
  if (name == "lstrip") return strip(self, args, true, false);
  if (name == "rstrip") return strip(self, args, false, true);
  if (name == "title") {  // JavaScript's value.replace(/\b\w/g, toUpperCase)
    std::string out = s;
    for (size_t i = 0; i < out.size(); ++i)
      if (is_ascii_word(out[i]) && (i == 0 || !is_ascii_word(out[i - 1])) && out[i] >= 'a' && out[i] <= 'z')
        out[i] = char(out[i] - 32);
    return Value::string(std::move(out));
  }
  if (name == "capitalize") {  // first character upper-cased, the rest unchanged
    if (s.empty()) return self;
    size_t i = 0;
    if (next_code_point(s, i) >= 0x10000) return self;
    return Value::string(to_upper(s.substr(0, i)) + s.substr(i));
  }
  if (name == "startswith") return Value::boolean(affix(self, args, true, "startswith"));
  if (name == "endswith") return Value::boolean(affix(self, args, false, "endswith"));
  if (name == "split") return split(self, args);
  if (name == "replace") return str_replace(self, args);
  if (name == "format") return str_format(self, args);
  if (name == "join") {
    const Value* items = args.get(0, "iterable");
    if (!items || !items->is_array()) eval_fail("join() argument must be a list");
    std::string out;
    for (size_t i = 0; i < items->arr().size(); ++i) {
      const Value& x = items->arr()[i];
      if (!x.is_string()) eval_fail("join(): sequence item ", i, ": expected str instance, ", type_name(x), " found");
      if (i) out += s;
      out += x.str();
    }
    return Value::string(std::move(out));
  }
  if (name == "count" || name == "find") {
    const std::string& sub = string_arg(args, 0, "sub", name.c_str());
    if (name == "find") {
      const size_t hit = s.find(sub);
      return Value::integer(hit == std::string::npos ? -1 : double(utf16_length(std::string_view(s).substr(0, hit))));
    }
    if (sub.empty()) return Value::integer(double(split_code_points(s).size() + 1));
    double n = 0;
    for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
    return Value::integer(n);
  }
  eval_fail("unknown string method ", name);
}

bool is_str_method(const std::string& n) {
  static const char* names[] = {"upper",      "lower",    "strip", "lstrip",  "rstrip", "title", "capitalize",
                                "startswith", "endswith", "split", "replace", "format", "join",  "count", "find"};
  return std::find(std::begin(names), std::end(names), n) != std::end(names);
}

Value dict_method(const std::string& name, const Value& self, const CallArgs& args) {
  const Object& o = self.obj();
  if (name == "get") {
    const Value* key = args.get(0, "key");
    if (!key || !key->is_string()) eval_fail("Object key must be a string: got ", key ? type_name(*key) : "nothing");
    if (const Value* v = o.find(key->str())) return *v;
    const Value* d = args.get(1, "default");
    return d ? *d : Value::none();
  }
  Array out;
  if (name == "items" || name == "dictsort") {
    for (const auto& [k, v] : o.items) out.push_back(Value::array({Value::string(k), v}));
  } else if (name == "keys") {
    for (const auto& kv : o.items) out.push_back(Value::string(kv.first));
  } else if (name == "values") {
    for (const auto& kv : o.items) out.push_back(kv.second);
  }
  if (name == "dictsort") {
    const Value* cs = args.get(0, "case_sensitive");
    const Value* by = args.get(1, "by");
    const Value* rev = args.get(2, "reverse");
    if (cs && !cs->is(Value::Kind::Bool)) eval_fail("case_sensitive must be a boolean");
    if (by && !(by->is_string() && (by->str() == "key" || by->str() == "value")))
      eval_fail("by must be either 'key' or 'value'");
    if (rev && !rev->is(Value::Kind::Bool)) eval_fail("reverse must be a boolean");
    const size_t idx = by && by->str() == "value" ? 1 : 0;
    const bool case_sensitive = cs && cs->as_bool(), reverse = rev && rev->as_bool();
    std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
      const int c = compare_values(a.arr()[idx], b.arr()[idx], case_sensitive);
      return reverse ? c > 0 : c < 0;
    });
  }
  return Value::array(std::move(out));
}

bool is_dict_method(const std::string& n) {
  return n == "get" || n == "items" || n == "keys" || n == "values" || n == "dictsort";
}

Value list_method(const std::string& name, const Value& self, const CallArgs& args) {
  Array& a = self.arr();
  if (name == "append") {
    const Value* v = args.get(0, "object");
    if (!v) eval_fail("append() takes exactly one argument");
    a.push_back(*v);
    return Value::none();
  }
  if (name == "extend") {
    const Value* v = args.get(0, "iterable");
    if (!v || !v->is_array()) eval_fail("extend() argument must be a list");
    const Array copy = v->arr();
    a.insert(a.end(), copy.begin(), copy.end());
    return Value::none();
  }
  // pop
  const Value* iv = args.get(0, "index");
  double i = iv ? iv->number() : -1;
  if (i < 0) i += double(a.size());
  if (a.empty() || i < 0 || i >= double(a.size())) eval_fail("pop index out of range");
  Value v = a[size_t(i)];
  a.erase(a.begin() + ptrdiff_t(i));
  return v;
}

Value bind(const Value& self, const std::string& name, Value (*f)(const std::string&, const Value&, const CallArgs&)) {
  return Value::function(name, [self, name, f](const CallArgs& args, Scope&) { return f(name, self, args); });
}

// JavaScript's String.prototype.at over UTF-16 units; half of a surrogate pair gives U+FFFD.
Value string_at(const std::string& s, double index) {
  const double n = double(utf16_length(s));
  if (index < 0) index += n;
  if (index < 0 || index >= n) return Value();
  double unit = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t c = next_code_point(s, i);
    const double w = c >= 0x10000 ? 2 : 1;
    if (index < unit + w) return Value::string(w == 2 ? "\xEF\xBF\xBD" : s.substr(start, i - start));
    unit += w;
  }
  return Value();
}

}  // namespace

Value get_member(const Value& obj, const Value& key) {
  if (obj.has_fields()) {
    if (!key.is_string()) eval_fail("Cannot access property with non-string: got ", type_name(key));
    if (const Value* v = obj.obj().find(key.str())) return *v;
    if (obj.is_object() && is_dict_method(key.str())) return bind(obj, key.str(), dict_method);
    return Value();
  }
  if (obj.is_array() || obj.is_string()) {
    if (key.is(Value::Kind::Int)) {
      if (obj.is_string()) return string_at(obj.str(), key.number());
      const Array& a = obj.arr();
      double i = key.number();
      if (i < 0) i += double(a.size());
      return i >= 0 && i < double(a.size()) ? a[size_t(i)] : Value();
    }
    if (!key.is_string()) eval_fail("Cannot access property with non-string/non-number: got ", type_name(key));
    const std::string& k = key.str();
    if (k == "length") return Value::integer(double(obj.is_string() ? utf16_length(obj.str()) : obj.arr().size()));
    if (obj.is_string() && is_str_method(k)) return bind(obj, k, str_method);
    if (obj.is_array() && (k == "append" || k == "extend" || k == "pop")) return bind(obj, k, list_method);
    return Value();
  }
  if (!key.is_string()) eval_fail("Cannot access property with non-string: got ", type_name(key));
  return Value();
}

namespace {

Value make_namespace(const CallArgs& args, Scope&) {
  if (args.positional.size() > 1) eval_fail("namespace expected at most 1 argument, got ", args.positional.size());
  Object o;
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_object()) {
      o = src.obj();
    } else if (src.is_array()) {
      for (const Value& pair : src.arr()) {
        if (!pair.is_array() || pair.arr().size() != 2)
          eval_fail("namespace expected an object or an iterable of [key, value] pairs");
        if (!pair.arr()[0].is_string()) eval_fail("namespace keys must be strings");
        o.set(pair.arr()[0].str(), pair.arr()[1]);
      }
    } else {
      eval_fail("'", type_name(src), "' object is not iterable");
    }
  }
  for (auto& [k, v] : args.keyword) o.set(k, v);
  return Value::namespace_(std::move(o));
}

Value range(const CallArgs& args, Scope&) {
  std::vector<double> a;
  for (const Value& v : args.positional) {
    if (!v.is_number() && !v.is(Value::Kind::Bool)) eval_fail("range() arguments must be numbers, got ", type_name(v));
    a.push_back(v.is(Value::Kind::Bool) ? double(v.as_bool()) : v.number());
  }
  if (a.empty() || a.size() > 3) eval_fail("range() expects 1 to 3 arguments, got ", a.size());
  const double start = a.size() == 1 ? 0 : a[0], stop = a.size() == 1 ? a[0] : a[1], step = a.size() == 3 ? a[2] : 1;
  if (step == 0) eval_fail("range() step must not be zero");
  if ((stop - start) / step > 1e7) eval_fail("range() is too long");
  Array out;
  for (double i = start; step > 0 ? i < stop : i > stop; i += step)
    out.push_back(std::floor(i) == i ? Value::integer(i) : Value::floating(i));
  return Value::array(std::move(out));
}

Value raise_exception(const CallArgs& args, Scope&) {
  const Value msg = args.positional.empty() ? Value() : args.positional[0];
  throw EvalError(msg.is_undefined() ? "" : msg.is_string() ? msg.str() : display(msg));
}

Value strftime_now(const CallArgs& args, Scope&) {
  if (args.positional.empty() || !args.positional[0].is_string()) eval_fail("strftime_now() expects a format string");
  const std::string& f = args.positional[0].str();
  static const char* months[] = {"January", "February", "March",     "April",   "May",      "June",
                                 "July",    "August",   "September", "October", "November", "December"};
  const std::time_t now = std::time(nullptr);
  std::tm t{};
  localtime_r(&now, &t);
  auto pad2 = [](int n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d", n);
    return std::string(buf);
  };
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%' || i + 1 >= f.size()) {
      out += f[i];
      continue;
    }
    switch (f[i + 1]) {
      case 'Y': out += std::to_string(t.tm_year + 1900); break;
      case 'm': out += pad2(t.tm_mon + 1); break;
      case 'd': out += pad2(t.tm_mday); break;
      case 'b': out += std::string(months[t.tm_mon]).substr(0, 3); break;
      case 'B': out += months[t.tm_mon]; break;
      case 'H': out += pad2(t.tm_hour); break;
      case 'M': out += pad2(t.tm_min); break;
      case '%': out += '%'; break;
      default: out += f.substr(i, 2); break;
    }
    ++i;
  }
  return Value::string(std::move(out));
}

}  // namespace

void install_globals(Scope& scope) {
  scope.set("namespace", Value::function("namespace", make_namespace));
  scope.set("range", Value::function("range", range));
  scope.set("raise_exception", Value::function("raise_exception", raise_exception));
  scope.set("strftime_now", Value::function("strftime_now", strftime_now));
  for (const char* n : {"true", "True"}) scope.set(n, Value::boolean(true));
  for (const char* n : {"false", "False"}) scope.set(n, Value::boolean(false));
  for (const char* n : {"none", "None"}) scope.set(n, Value::none());
}

}  // namespace dsv3::jinja
