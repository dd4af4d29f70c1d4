#include "chat/jinja_eval.h"

#include <cmath>

#include "base/error.h"
#include "chat/jinja_text.h"

namespace dsv3::jinja {

Value Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent) {
    const auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  return Value();
}

void Interpreter::fail_at(Pos pos, const std::string& msg) const { fail(where(program_.name, pos), msg); }

namespace {

// Counts nested macro calls; a template recursing without end gets an error, not a crash.
struct CallDepth {
  explicit CallDepth(int& depth) : d(depth) {
    if (++d > 200) {
      --d;
      eval_fail("macro calls nested more than 200 deep (endless recursion?)");
    }
  }
  ~CallDepth() { --d; }
  int& d;
};

}  // namespace

std::string Interpreter::render(Scope& globals) {
  std::string out;
  exec(program_.body, globals, out);
  return out;
}

// ---- statements -----------------------------------------------------------------------

Interpreter::Flow Interpreter::exec(const Body& body, Scope& scope, std::string& out) {
  for (const auto& s : body) {
    const Flow f = exec(*s, scope, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, Scope& scope, std::string& out) {
  switch (s.kind) {
    case StmtKind::Text: out += s.text; break;
    case StmtKind::Output: emit(eval(*s.expr, scope), s.expr->pos, out); break;
    case StmtKind::If: return exec(truthy(eval(*s.expr, scope)) ? s.body : s.orelse, scope, out);
    case StmtKind::For: exec_for(s, scope, out); break;
    case StmtKind::Set: exec_set(s, eval(*s.expr, scope), scope); break;
    case StmtKind::SetBlock: {
      std::string text;
      exec(s.body, scope, text);
      exec_set(s, Value::string(std::move(text)), scope);
      break;
    }
    case StmtKind::Macro: scope.set(s.text, make_macro(s)); break;
    case StmtKind::CallBlock: exec_call_block(s, scope, out); break;
    case StmtKind::FilterBlock: {
      std::string text;
      exec(s.body, scope, text);
      const Expr& f = *s.expr;
      CallArgs args = eval_args(f, 1, scope);
      Value v;
      try {
        v = apply_filter(f.name, f.flag, Value::string(std::move(text)), args, scope);
      } catch (const EvalError& e) {
        fail_at(f.pos, e.what());
      }
      emit(v, f.pos, out);
      break;
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

void Interpreter::exec_call_block(const Stmt& s, Scope& scope, std::string& out) {
  // caller() renders the block in the scope where the call block stands, which only lives
  // until the call returns: a caller kept past that (in a namespace) reports an error.
  const Stmt* block = &s;
  Scope* where_defined = &scope;
  const auto alive = std::make_shared<bool>(true);
  struct Expire {
    std::shared_ptr<bool> flag;
    ~Expire() { *flag = false; }
  } expire{alive};
  Value caller = Value::function("caller", [this, block, where_defined, alive](const CallArgs& args, Scope&) {
    if (!*alive) eval_fail("caller() used after its call block ended");
    const CallDepth depth(call_depth_);
    Scope local{where_defined, {}};
    size_t i = 0;
    for (const Param& p : block->params) {
      const Value* v = args.get(i++, p.name);
      local.set(p.name, v ? *v : p.default_value ? eval(*p.default_value, local) : Value());
    }
    std::string text;
    exec(block->body, local, text);
    return Value::string(std::move(text));
  });
  const Expr& call = *s.expr;
  CallArgs args = eval_args(call, 1, scope);
  const Value fn = eval(*call.kids[0], scope);
  if (!fn.is(Value::Kind::Function))
    fail_at(call.pos, std::string("Cannot call something that is not a function: got ") + type_name(fn));
  Scope with_caller{&scope, {}};
  with_caller.set("caller", caller);
  Value v;
  try {
    v = fn.fn().call(args, with_caller);
  } catch (const EvalError& e) {
    fail_at(call.pos, e.what());
  }
  emit(v, call.pos, out);
}

void Interpreter::emit(const Value& v, Pos pos, std::string& out) const {
  if (v.is_undefined() || v.is_none()) return;  // none and undefined print nothing
  try {
    out += display(v);
  } catch (const EvalError& e) {
    fail_at(pos, e.what());
  }
}

void Interpreter::assign(const Expr& target, const Value& value, Scope& scope) {
  if (target.kind == ExprKind::Name) {
    scope.set(target.name, value);
    return;
  }
  // A tuple of names.
  if (!value.is_array()) fail_at(target.pos, std::string("Cannot unpack non-iterable type: ") + type_name(value));
  const Array& a = value.arr();
  if (a.size() != target.kids.size())
    fail_at(target.pos, std::string("Too ") + (target.kids.size() > a.size() ? "few" : "many") + " items to unpack");
  for (size_t i = 0; i < a.size(); ++i) scope.set(target.kids[i]->name, a[i]);
}

void Interpreter::exec_set(const Stmt& s, Value value, Scope& scope) {
  const Expr& t = *s.target;
  if (t.kind != ExprKind::Attribute) return assign(t, value, scope);
  const Value object = eval(*t.kids[0], scope);
  if (!object.is(Value::Kind::Namespace)) fail_at(t.pos, "cannot assign attribute on non-namespace object");
  object.obj().set(t.name, std::move(value));
}

void Interpreter::exec_for(const Stmt& s, Scope& outer, std::string& out) {
  Scope scope{&outer, {}};
  const Value iterable = eval(*s.expr, scope);
  Array all;
  if (iterable.is_array()) {
    all = iterable.arr();  // a snapshot: the body may append to the list
  } else if (iterable.is_object()) {
    for (const auto& kv : iterable.obj().items) all.push_back(Value::string(kv.first));
  } else if (iterable.is_string()) {
    for (std::string& c : split_code_points(iterable.str())) all.push_back(Value::string(std::move(c)));
  } else {
    fail_at(s.expr->pos, std::string("Expected iterable or object type in for loop: got ") + type_name(iterable));
  }
  Array items;
  if (s.cond) {
    for (const Value& v : all) {
      Scope probe{&scope, {}};
      assign(*s.target, v, probe);
      if (truthy(eval(*s.cond, probe))) items.push_back(v);
    }
  } else {
    items = std::move(all);
  }
  const double n = double(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    Object loop;
    const double k = double(i);
    loop.items = {{"index", Value::integer(k + 1)},
                  {"index0", Value::integer(k)},
                  {"revindex", Value::integer(n - k)},
                  {"revindex0", Value::integer(n - k - 1)},
                  {"first", Value::boolean(i == 0)},
                  {"last", Value::boolean(i + 1 == items.size())},
                  {"length", Value::integer(n)},
                  {"previtem", i > 0 ? items[i - 1] : Value()},
                  {"nextitem", i + 1 < items.size() ? items[i + 1] : Value()}};
    scope.set("loop", Value::object(std::move(loop)));
    assign(*s.target, items[i], scope);
    if (exec(s.body, scope, out) == Flow::Break) break;
  }
  if (items.empty()) exec(s.orelse, scope, out);
}

Value Interpreter::make_macro(const Stmt& s) {
  const Stmt* m = &s;
  return Value::function(s.text, [this, m](const CallArgs& args, Scope& caller_scope) {
    const CallDepth depth(call_depth_);
    Scope local{&caller_scope, {}};
    std::vector<std::pair<std::string, Value>> extra_kw = args.keyword;
    std::vector<const Param*> pending;
    for (size_t i = 0; i < m->params.size(); ++i) {
      const Param& p = m->params[i];
      Value v;
      bool given = false;
      if (i < args.positional.size()) {
        v = args.positional[i], given = true;
      } else {
        for (auto it = extra_kw.begin(); it != extra_kw.end(); ++it)
          if (it->first == p.name) {
            v = it->second, given = true;
            extra_kw.erase(it);
            break;
          }
      }
      if (!given && p.default_value) pending.push_back(&p);
      local.set(p.name, v);
    }
    Object kwargs;
    for (auto& kv : extra_kw) kwargs.set(kv.first, kv.second);
    local.set("kwargs", Value::object(std::move(kwargs)));
    Array varargs;
    for (size_t i = m->params.size(); i < args.positional.size(); ++i) varargs.push_back(args.positional[i]);
    local.set("varargs", Value::array(std::move(varargs)));
    for (const Param* p : pending) local.set(p->name, eval(*p->default_value, local));
    std::string text;
    exec(m->body, local, text);
    return Value::string(std::move(text));
  });
}

// ---- expressions ----------------------------------------------------------------------

Value Interpreter::eval(const Expr& e, Scope& scope) {
  try {
    return eval_inner(e, scope);
  } catch (const EvalError& err) {
    fail_at(e.pos, err.what());
  }
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first, Scope& scope) {
  CallArgs args;
  // Positional values (and * unpacking) first, then keywords, as Python evaluates them.
  for (size_t i = first; i < e.kids.size(); ++i) {
    const Expr& a = *e.kids[i];
    if (a.kind == ExprKind::Spread) {
      const Value v = eval(*a.kids[0], scope);
      if (!v.is_array()) fail_at(a.pos, std::string("Cannot unpack non-iterable type: ") + type_name(v));
      for (const Value& x : v.arr()) args.positional.push_back(x);
    } else if (a.kind != ExprKind::KeywordArg && a.kind != ExprKind::KwSpread) {
      args.positional.push_back(eval(a, scope));
    }
  }
  auto add_kw = [&](const std::string& k, Value v, Pos pos) {
    for (const auto& kv : args.keyword)
      if (kv.first == k) fail_at(pos, "Got multiple values for keyword argument '" + k + "'");
    args.keyword.emplace_back(k, std::move(v));
  };
  for (size_t i = first; i < e.kids.size(); ++i) {
    const Expr& a = *e.kids[i];
    if (a.kind == ExprKind::KeywordArg) {
      add_kw(a.name, eval(*a.kids[0], scope), a.pos);
    } else if (a.kind == ExprKind::KwSpread) {
      const Value v = eval(*a.kids[0], scope);
      if (!v.is_object()) fail_at(a.pos, std::string("Argument after ** must be a mapping, not ") + type_name(v));
      for (const auto& kv : v.obj().items) add_kw(kv.first, kv.second, a.pos);
    }
  }
  return args;
}

Value Interpreter::eval_inner(const Expr& e, Scope& scope) {
  switch (e.kind) {
    case ExprKind::Literal: return e.literal;
    case ExprKind::Name: return scope.lookup(e.name);
    case ExprKind::List:
    case ExprKind::Tuple: {
      Array a;
      a.reserve(e.kids.size());
      for (const auto& k : e.kids) a.push_back(eval(*k, scope));
      return Value::array(std::move(a));
    }
    case ExprKind::Dict: {
      Object o;
      for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
        const Value k = eval(*e.kids[i], scope);
        if (!k.is_string()) fail_at(e.kids[i]->pos, std::string("Object keys must be strings: got ") + type_name(k));
        o.set(k.str(), eval(*e.kids[i + 1], scope));
      }
      return Value::object(std::move(o));
    }
    case ExprKind::Unary: {
      const Value v = eval(*e.kids[0], scope);
      if (e.name == "not") return Value::boolean(!truthy(v));
      const double sign = e.name == "-" ? -1 : 1;
      if (v.is(Value::Kind::Bool)) return Value::integer(sign * (v.as_bool() ? 1 : 0));
      if (v.is_number()) return v.is(Value::Kind::Float) ? Value::floating(sign * v.number()) : Value::integer(sign * v.number());
      eval_fail("Unknown operator \"", e.name, "\" for ", type_name(v));
    }
    case ExprKind::Binary: return eval_binary(e, scope);
    case ExprKind::Attribute: return get_member(eval(*e.kids[0], scope), Value::string(e.name));
    case ExprKind::Subscript: return eval_subscript(e, scope);
    case ExprKind::Call: {
      CallArgs args = eval_args(e, 1, scope);
      const Value fn = eval(*e.kids[0], scope);
      if (!fn.is(Value::Kind::Function))
        eval_fail("Cannot call something that is not a function: got ", type_name(fn));
      return fn.fn().call(args, scope);
    }
    case ExprKind::Filter: {
      const Value operand = eval(*e.kids[0], scope);
      const CallArgs args = eval_args(e, 1, scope);
      return apply_filter(e.name, e.flag, operand, args, scope);
    }
    case ExprKind::Test: {
      const Value operand = eval(*e.kids[0], scope);
      const CallArgs args = eval_args(e, 1, scope);
      return Value::boolean(apply_test(e.name, operand, args) != e.flag);
    }
    case ExprKind::Ternary:
      return truthy(eval(*e.kids[0], scope)) ? eval(*e.kids[1], scope) : eval(*e.kids[2], scope);
    case ExprKind::Select: return truthy(eval(*e.kids[1], scope)) ? eval(*e.kids[0], scope) : Value();
    case ExprKind::Slice:
    case ExprKind::KeywordArg:
    case ExprKind::Spread:
    case ExprKind::KwSpread: break;
  }
  eval_fail("this expression is only allowed inside [] or an argument list");
}

namespace {

// Python's slice over n elements (what @huggingface/jinja's slice() computes).
std::vector<size_t> slice_indexes(size_t n, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto get = [](const Value& v, const char* what, bool& given) -> double {
    given = !v.is_undefined() && !v.is_none();
    if (given && !v.is(Value::Kind::Int)) eval_fail("Slice ", what, " must be numeric or undefined");
    return given ? v.number() : 0;
  };
  bool has_start, has_stop, has_step;
  double start = get(start_v, "start", has_start), stop = get(stop_v, "stop", has_stop);
  const double step = get(step_v, "step", has_step);
  const double st = has_step ? step : 1;
  if (st == 0) eval_fail("slice step cannot be zero");
  const double len = double(n);
  if (st > 0) {
    start = !has_start ? 0 : start < 0 ? std::max(len + start, 0.0) : std::min(start, len);
    stop = !has_stop ? len : stop < 0 ? std::max(len + stop, 0.0) : std::min(stop, len);
  } else {
    start = !has_start ? len - 1 : start < 0 ? std::max(len + start, -1.0) : std::min(start, len - 1);
    stop = !has_stop ? -1 : stop < -1 ? std::max(len + stop, -1.0) : std::min(stop, len - 1);
  }
  std::vector<size_t> out;
  for (double i = start; st > 0 ? i < stop : i > stop; i += st) out.push_back(size_t(i));
  return out;
}

}  // namespace

Value Interpreter::eval_subscript(const Expr& e, Scope& scope) {
  const Value object = eval(*e.kids[0], scope);
  const Expr& index = *e.kids[1];
  if (index.kind != ExprKind::Slice) return get_member(object, eval(index, scope));
  if (!object.is_array() && !object.is_string()) eval_fail("Slice object must be an array or string");
  Value parts[3];
  for (int i = 0; i < 3; ++i)
    if (index.kids[size_t(i)]) parts[i] = eval(*index.kids[size_t(i)], scope);
  if (object.is_array()) {
    const Array& a = object.arr();
    Array out;
    for (size_t i : slice_indexes(a.size(), parts[0], parts[1], parts[2])) out.push_back(a[i]);
    return Value::array(std::move(out));
  }
  const std::vector<std::string> cps = split_code_points(object.str());
  std::string out;
  for (size_t i : slice_indexes(cps.size(), parts[0], parts[1], parts[2])) out += cps[i];
  return Value::string(std::move(out));
}

namespace {

bool numeric_like(const Value& v) { return v.is_number() || v.is(Value::Kind::Bool); }
double numeric(const Value& v) { return v.is(Value::Kind::Bool) ? (v.as_bool() ? 1 : 0) : v.number(); }

Value number_result(double x, bool is_float) { return is_float ? Value::floating(x) : Value::integer(x); }

}  // namespace

Value Interpreter::eval_binary(const Expr& e, Scope& scope) {
  const std::string& op = e.name;
  const Value left = eval(*e.kids[0], scope);
  if (op == "and") return truthy(left) ? eval(*e.kids[1], scope) : left;
  if (op == "or") return truthy(left) ? left : eval(*e.kids[1], scope);
  const Value right = eval(*e.kids[1], scope);
  if (op == "==") return Value::boolean(loose_equal(left, right));
  if (op == "!=") return Value::boolean(!loose_equal(left, right));
  const bool is_in = op == "in", not_in = op == "not in";
  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && (is_in || not_in)) return Value::boolean(not_in);
    eval_fail("Cannot perform operation ", op, " on undefined values");
  }
  if (left.is_none() || right.is_none()) eval_fail("Cannot perform operation on null values");
  if (op == "~") return Value::string(raw_string(left) + raw_string(right));
  if (op == "**" && numeric_like(left) && numeric_like(right)) {
    const double a = numeric(left), b = numeric(right);
    if (a == 0 && b < 0) eval_fail("0.0 cannot be raised to a negative power");
    const double r = std::pow(a, b);
    if (!std::isfinite(r)) eval_fail("Exponentiation result is not a finite real number");
    return number_result(r, left.is(Value::Kind::Float) || right.is(Value::Kind::Float) || b < 0);
  }
  if (left.is_number() && right.is_number()) {
    const double a = left.number(), b = right.number();
    const bool fl = left.is(Value::Kind::Float) || right.is(Value::Kind::Float);
    if (op == "+") return number_result(a + b, fl);
    if (op == "-") return number_result(a - b, fl);
    if (op == "*") return number_result(a * b, fl);
    if ((op == "/" || op == "//" || op == "%") && b == 0) eval_fail("division by zero");
    if (op == "/") return Value::floating(a / b);
    if (op == "//") return number_result(std::floor(a / b), fl);
    if (op == "%") {  // Python's modulo: the sign of the divisor
      double r = std::fmod(a, b);
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return number_result(r, fl);
    }
    if (op == "<") return Value::boolean(a < b);
    if (op == ">") return Value::boolean(a > b);
    if (op == "<=") return Value::boolean(a <= b);
    if (op == ">=") return Value::boolean(a >= b);
  } else if (left.is_array() && right.is_array()) {
    if (op == "+") {
      Array out = left.arr();
      out.insert(out.end(), right.arr().begin(), right.arr().end());
      return Value::array(std::move(out));
    }
  } else if (right.is_array() && (is_in || not_in)) {
    bool found = false;
    for (const Value& x : right.arr()) found = found || strict_equal(x, left);
    return Value::boolean(found != not_in);
  }
  if (op == "+") {  // Python's +: strings and lists only with their own kind
    if (left.is_string() && right.is_string()) return Value::string(left.str() + right.str());
    if (left.is_string() || left.is_array())
      eval_fail("can only concatenate ", python_type(left), " (not \"", python_type(right), "\") to ", python_type(left));
    if (right.is_string() || right.is_array() || left.has_fields() || right.has_fields())
      eval_fail("unsupported operand type(s) for +: '", python_type(left), "' and '", python_type(right), "'");
  }
  if (left.is_string() && right.is_string()) {
    if (is_in || not_in) return Value::boolean((right.str().find(left.str()) != std::string::npos) != not_in);
    // Python's Jinja orders strings by code point (UTF-8 byte order is the same).
    const int c = left.str().compare(right.str());
    if (op == "<") return Value::boolean(c < 0);
    if (op == ">") return Value::boolean(c > 0);
    if (op == "<=") return Value::boolean(c <= 0);
    if (op == ">=") return Value::boolean(c >= 0);
  }
  if (left.is_string() && right.is_object() && (is_in || not_in))
    return Value::boolean((right.obj().find(left.str()) != nullptr) != not_in);
  if (op == "*" && (left.is_string() || left.is_array()) && right.is(Value::Kind::Int)) {  // Python repetition
    const double times = std::max(0.0, right.number());
    const double size = times * double(left.is_string() ? left.str().size() : left.arr().size());
    if (size > double(1 << 26)) eval_fail("repetition result too large");
    if (left.is_string()) {
      std::string out;
      for (double i = 0; i < times; ++i) out += left.str();
      return Value::string(std::move(out));
    }
    Array out;
    for (double i = 0; i < times; ++i) out.insert(out.end(), left.arr().begin(), left.arr().end());
    return Value::array(std::move(out));
  }
  eval_fail("Unknown operator \"", op, "\" between ", type_name(left), " and ", type_name(right));
}

}  // namespace dsv3::jinja
