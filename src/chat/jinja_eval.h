// The tree-walking evaluator and the built-ins it calls (filters, tests, methods, globals).
// Semantics follow @huggingface/jinja 0.5.11, the reference of the chat-template goldens
// (JavaScript's == and string conversions, "true" for booleans, tojson spacing, ...). Where
// the reference raises an error for something Python's Jinja accepts, Python's Jinja is
// followed: filters d, count, e/escape, round, select, reject, map('filter'), first / last /
// list / reverse on strings, string on none / dicts; str.format / join / count / find,
// strip(chars), list append / extend / pop; string < and *, for over a string, tuples printed
// as lists, test arguments. Deliberate differences where the reference answers: x / 0 and
// x % 0 are errors (not Infinity / NaN); % takes the divisor's sign and int() truncates, as in
// Python; for-else runs only when nothing was iterated; tojson(sort_keys=true) orders by code
// point (not localeCompare); dict keys keep their insertion order (JavaScript moves
// integer-like keys first); context variables may shadow globals; upper / lower map Latin,
// Greek, Cyrillic and fullwidth letters only. One Interpreter renders once; it is not shared
// between threads.
#pragma once

#include <string>
#include <unordered_map>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace dsv3::jinja {

//! Variables of one scope (the globals, a for loop, a macro call) and the scope around it.
struct Scope {
  Scope* parent = nullptr;
  std::unordered_map<std::string, Value> vars;

  //! The nearest definition of `name`, else undefined.
  Value lookup(const std::string& name) const;
  //! Defines or replaces `name` in this scope (not in the outer ones), as {% set %} does.
  void set(const std::string& name, Value v) { vars[name] = std::move(v); }
};

class Interpreter {
 public:
  explicit Interpreter(const Program& program) : program_(program) {}

  //! Renders the whole template with `globals` as the outermost scope.
  std::string render(Scope& globals);

  //! Evaluates an expression; a runtime error throws dsv3::Error "name:LINE:COL: message"
  //! at the innermost expression that failed.
  Value eval(const Expr& e, Scope& scope);

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec(const Body& body, Scope& scope, std::string& out);
  Flow exec(const Stmt& s, Scope& scope, std::string& out);
  void exec_for(const Stmt& s, Scope& scope, std::string& out);
  void exec_call_block(const Stmt& s, Scope& scope, std::string& out);
  //! Appends what {{ v }} prints.
  void emit(const Value& v, Pos pos, std::string& out) const;
  void exec_set(const Stmt& s, Value value, Scope& scope);
  void assign(const Expr& target, const Value& value, Scope& scope);
  Value make_macro(const Stmt& s);
  Value eval_inner(const Expr& e, Scope& scope);
  Value eval_binary(const Expr& e, Scope& scope);
  Value eval_subscript(const Expr& e, Scope& scope);
  CallArgs eval_args(const Expr& e, size_t first, Scope& scope);
  [[noreturn]] void fail_at(Pos pos, const std::string& msg) const;

  const Program& program_;
  int call_depth_ = 0;  // macro and caller() calls in progress
};

//! Defines the global functions and constants: namespace, range, raise_exception,
//! strftime_now, true/false/none (and True/False/None).
void install_globals(Scope& scope);

//! obj.key / obj[key]: dict entries (then dict methods), list and string indexes (negative
//! counts from the end), string and list methods bound to obj, else undefined.
Value get_member(const Value& obj, const Value& key);

//! value | name(args). `called` tells `|f()` from `|f` (the reference treats a few apart).
Value apply_filter(const std::string& name, bool called, const Value& operand, const CallArgs& args, Scope& scope);

//! value is name(args).
bool apply_test(const std::string& name, const Value& operand, const CallArgs& args);

}  // namespace dsv3::jinja
