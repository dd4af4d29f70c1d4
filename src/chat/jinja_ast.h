// Syntax tree of a parsed template. Immutable after parsing; rendering only reads it, so one
// tree may be rendered from many threads at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chat/jinja_lexer.h"
#include "chat/jinja_value.h"

namespace dsv3::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Literal,     // literal: number or string
  Name,        // name
  List,        // [kids...]
  Tuple,       // (kids...)
  Dict,        // {kids[0]: kids[1], kids[2]: kids[3], ...}
  Unary,       // name: "not" "-" "+"; kids[0]
  Binary,      // name: operator ("and", "in", "not in", "+", "==", ...); kids[0] kids[1]
  Attribute,   // kids[0].name
  Subscript,   // kids[0][kids[1]] (kids[1] may be a Slice)
  Slice,       // kids[0]:kids[1]:kids[2], each may be null
  Call,        // kids[0](kids[1...])
  Filter,      // kids[0] | name(kids[1...]); flag: written with parentheses
  Test,        // kids[0] is [not] name(kids[1...]); flag: negated
  Ternary,     // kids[1] if kids[0] else kids[2]
  Select,      // kids[0] if kids[1]   (undefined when false)
  KeywordArg,  // name=kids[0], only in argument lists
  Spread,      // *kids[0], only in argument lists
  KwSpread,    // **kids[0], only in argument lists
};

struct Expr {
  ExprKind kind;
  Pos pos;
  std::string name;
  Value literal;
  bool flag = false;
  std::vector<ExprPtr> kids;

  Expr(ExprKind k, Pos p) : kind(k), pos(p) {}
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

enum class StmtKind {
  Text,         // text
  Output,       // {{ expr }}
  If,           // {% if expr %} body {% else %} orelse {% endif %}; elif nests an If in orelse
  For,          // {% for target in expr [if cond] %} body {% else %} orelse {% endfor %}
  Set,          // {% set target = expr %}
  SetBlock,     // {% set target %} body {% endset %}
  Macro,        // {% macro text(params) %} body {% endmacro %}
  CallBlock,    // {% call(params) expr %} body {% endcall %}
  FilterBlock,  // {% filter expr %} body {% endfilter %} (expr: a Filter with a null operand)
  Break,
  Continue,
};

struct Stmt {
  StmtKind kind;
  Pos pos;
  std::string text;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr cond;
  Body body, orelse;
  std::vector<Param> params;

  Stmt(StmtKind k, Pos p) : kind(k), pos(p) {}
};

struct Program {
  std::string name;
  Body body;
};

//! Parses tokens from tokenize(); a syntax error throws dsv3::Error "name:LINE:COL: message".
std::unique_ptr<Program> parse_template(const std::string& source, const std::string& name);

}  // namespace dsv3::jinja
