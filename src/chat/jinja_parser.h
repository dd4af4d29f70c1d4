// Internal to the Jinja renderer: the recursive-descent parser, with @huggingface/jinja's
// grammar and operator precedence, lowest first: a if b else c / or / and / not / comparison
// and in / + - ~ / * / // % / ** / is-test / filter / unary sign / call, attribute and
// subscript / primary. Statements are in jinja_parser.cc, expressions in jinja_parse_expr.cc.
// Extensions over the reference (where it reports a syntax error): test arguments
// (`is divisibleby(3)`, `is sameas false`), `()`, trailing commas in tuples.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "chat/jinja_ast.h"

namespace dsv3::jinja {

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name) : t_(tokens), name_(name) {}

  //! The whole template; a syntax error throws dsv3::Error "name:LINE:COL: message".
  Body parse_all();

 private:
  // ---- token helpers --------------------------------------------------------------------

  const Token& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool is(Tok type) const { return peek().type == type; }
  bool is_ident(const char* word, size_t k = 0) const {
    return peek(k).type == Tok::Ident && peek(k).value == word;
  }
  bool is_stmt(std::initializer_list<const char*> names) const {
    if (peek().type != Tok::OpenStmt || peek(1).type != Tok::Ident) return false;
    for (const char* n : names)
      if (peek(1).value == n) return true;
    return false;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::End: return "end of template";
      case Tok::Text: return "text";
      case Tok::Comment: return "comment";
      case Tok::String: return "string '" + t.value + "'";
      default: return "'" + t.value + "'";
    }
  }

  [[noreturn]] void error(const Token& t, const std::string& msg) const { fail(where(name_, t.pos), msg); }

  // Bounds the recursion (nested brackets, `not not ...`, nested blocks) so that a hostile
  // template gets an error instead of exhausting the stack.
  struct Nest {
    explicit Nest(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxDepth) p_.error(p_.peek(), "nesting too deep (more than " + std::to_string(kMaxDepth) + " levels)");
    }
    ~Nest() { --p_.depth_; }
    Parser& p_;
  };
  static constexpr int kMaxDepth = 200;

  [[noreturn]] void unexpected(const Token& t, const std::string& expected) const {
    error(t, "unexpected " + describe(t) + ", expected " + expected);
  }

  const Token& expect(Tok type, const std::string& what) {
    if (!is(type)) unexpected(peek(), what);
    return next();
  }

  static void add(Body& body, std::unique_ptr<Stmt> s) {
    if (s) body.push_back(std::move(s));
  }

  // ---- statements (jinja_parser.cc) -----------------------------------------------------

  std::unique_ptr<Stmt> parse_any();
  Body parse_block(std::initializer_list<const char*> ends, const Token& opener, const char* end_tag);
  void expect_end_tag(const char* word);
  std::unique_ptr<Stmt> parse_statement();
  void check_target(const Expr& e, bool allow_attribute);
  std::unique_ptr<Stmt> parse_set(const Token& tag);
  std::unique_ptr<Stmt> parse_if(const Token& tag);
  std::unique_ptr<Stmt> parse_for(const Token& tag);
  std::vector<Param> parse_params();
  std::unique_ptr<Stmt> parse_macro(const Token& tag);
  std::unique_ptr<Stmt> parse_call_block(const Token& tag);
  std::unique_ptr<Stmt> parse_filter_block(const Token& tag);

  // ---- expressions (jinja_parse_expr.cc), lowest precedence first ------------------------

  ExprPtr make(ExprKind k, Pos p, std::string name = {});
  ExprPtr make2(ExprKind k, const Token& op, ExprPtr a, ExprPtr b);
  bool closes_sequence() const;
  ExprPtr parse_expression_sequence(bool primary);
  ExprPtr parse_expression();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_comparison();
  ExprPtr parse_additive();
  ExprPtr parse_multiplicative();
  ExprPtr parse_power();
  bool starts_test_argument() const;
  ExprPtr parse_test();
  ExprPtr parse_filter();
  ExprPtr parse_unary();
  void parse_args(Expr& e);
  ExprPtr parse_member(ExprPtr object);
  ExprPtr parse_subscript(const Token& open);
  ExprPtr parse_primary();

  struct OpenBlock {
    const Token* tag;
    const char* end_tag;
  };

  const std::vector<Token>& t_;
  const std::string& name_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
  std::vector<OpenBlock> open_;  // blocks being parsed, innermost last
};

}  // namespace dsv3::jinja
