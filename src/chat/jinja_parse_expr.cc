// Expressions of the Jinja parser (the Parser class is in jinja_parser.h).
#include <cstdlib>

#include "chat/jinja_parser.h"

namespace dsv3::jinja {

ExprPtr Parser::make(ExprKind k, Pos p, std::string name) {
  auto e = std::make_unique<Expr>(k, p);
  e->name = std::move(name);
  return e;
}

ExprPtr Parser::make2(ExprKind k, const Token& op, ExprPtr a, ExprPtr b) {
  auto e = make(k, op.pos, op.value);
  e->kids.push_back(std::move(a));
  e->kids.push_back(std::move(b));
  return e;
}

bool Parser::closes_sequence() const {
  return is(Tok::RParen) || is(Tok::CloseStmt) || is(Tok::CloseExpr) || is(Tok::Equals) || is_ident("in");
}

ExprPtr Parser::parse_expression_sequence(bool primary) {
  const Pos p = peek().pos;
  ExprPtr first = primary ? parse_primary() : parse_expression();
  if (!is(Tok::Comma)) return first;
  auto tuple = make(ExprKind::Tuple, p);
  tuple->kids.push_back(std::move(first));
  while (is(Tok::Comma)) {
    ++i_;
    if (closes_sequence()) break;  // trailing comma
    tuple->kids.push_back(primary ? parse_primary() : parse_expression());
  }
  return tuple;
}

ExprPtr Parser::parse_expression() {
  Nest nest(*this);
  ExprPtr a = parse_or();
  if (!is_ident("if")) return a;
  const Token& tok = next();
  ExprPtr test = parse_or();
  if (is_ident("else")) {
    ++i_;
    auto e = make(ExprKind::Ternary, tok.pos);
    e->kids.push_back(std::move(test));
    e->kids.push_back(std::move(a));
    e->kids.push_back(parse_expression());
    return e;
  }
  auto e = make(ExprKind::Select, tok.pos);
  e->kids.push_back(std::move(a));
  e->kids.push_back(std::move(test));
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_ident("or")) {
    const Token& op = next();
    left = make2(ExprKind::Binary, op, std::move(left), parse_and());
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_ident("and")) {
    const Token& op = next();
    left = make2(ExprKind::Binary, op, std::move(left), parse_not());
  }
  return left;
}

ExprPtr Parser::parse_not() {
  Nest nest(*this);
  if (!is_ident("not")) return parse_comparison();
  const Token& op = next();
  auto e = make(ExprKind::Unary, op.pos, "not");
  e->kids.push_back(parse_not());
  return e;
}

ExprPtr Parser::parse_comparison() {
  ExprPtr left = parse_additive();
  while (true) {
    if (is_ident("not") && is_ident("in", 1)) {
      Token op = next();
      ++i_;
      op.value = "not in";
      left = make2(ExprKind::Binary, op, std::move(left), parse_additive());
    } else if (is_ident("in") || is(Tok::Comparison)) {
      const Token& op = next();
      left = make2(ExprKind::Binary, op, std::move(left), parse_additive());
    } else {
      return left;
    }
  }
}

ExprPtr Parser::parse_additive() {
  ExprPtr left = parse_multiplicative();
  while (is(Tok::Additive)) {
    const Token& op = next();
    left = make2(ExprKind::Binary, op, std::move(left), parse_multiplicative());
  }
  return left;
}

ExprPtr Parser::parse_multiplicative() {
  ExprPtr left = parse_power();
  while (is(Tok::Multiplicative)) {
    const Token& op = next();
    left = make2(ExprKind::Binary, op, std::move(left), parse_power());
  }
  return left;
}

ExprPtr Parser::parse_power() {
  ExprPtr left = parse_test();
  while (is(Tok::Power)) {  // left-associative in Jinja
    const Token& op = next();
    left = make2(ExprKind::Binary, op, std::move(left), parse_test());
  }
  return left;
}

// Where a test argument may follow without parentheses (`is sameas false`), as Jinja allows.
bool Parser::starts_test_argument() const {
  const Token& t = peek();
  if (t.type == Tok::Ident) {
    for (const char* kw : {"and", "or", "else", "if", "in", "not", "is"})
      if (t.value == kw) return false;
    return true;
  }
  return t.type == Tok::String || t.type == Tok::Number || t.type == Tok::LBracket || t.type == Tok::LBrace;
}

ExprPtr Parser::parse_test() {
  ExprPtr operand = parse_filter();
  while (is_ident("is")) {
    ++i_;
    const bool negate = is_ident("not");
    if (negate) ++i_;
    if (!is(Tok::Ident)) unexpected(peek(), "a test name after 'is'");
    const Token& name = next();
    auto e = make(ExprKind::Test, name.pos, name.value);
    e->flag = negate;
    e->kids.push_back(std::move(operand));
    if (is(Tok::LParen)) {
      parse_args(*e);
    } else if (starts_test_argument()) {
      e->kids.push_back(parse_member(parse_primary()));
    }
    operand = std::move(e);
  }
  return operand;
}

ExprPtr Parser::parse_filter() {
  ExprPtr operand = parse_unary();
  while (is(Tok::Pipe)) {
    ++i_;
    if (!is(Tok::Ident)) unexpected(peek(), "a filter name after '|'");
    const Token& name = next();
    auto e = make(ExprKind::Filter, name.pos, name.value);
    e->kids.push_back(std::move(operand));
    if (is(Tok::LParen)) {
      e->flag = true;
      parse_args(*e);
    }
    operand = std::move(e);
  }
  return operand;
}

ExprPtr Parser::parse_unary() {
  Nest nest(*this);
  const Token& t = peek();
  if ((t.type == Tok::Unary || t.type == Tok::Additive) && (t.value == "-" || t.value == "+")) {
    ++i_;
    auto e = make(ExprKind::Unary, t.pos, t.value);
    e->kids.push_back(parse_unary());
    return e;
  }
  const Pos start = peek().pos;  // calls report where the callee expression starts
  ExprPtr member = parse_member(parse_primary());
  while (is(Tok::LParen)) {
    auto call = make(ExprKind::Call, start);
    call->kids.push_back(std::move(member));
    parse_args(*call);
    member = parse_member(std::move(call));
  }
  return member;
}

// Appends the arguments of ( ... ) to e.kids.
void Parser::parse_args(Expr& e) {
  expect(Tok::LParen, "'('");
  bool keyword_seen = false;
  while (!is(Tok::RParen)) {
    if (is(Tok::End)) unexpected(peek(), "')'");
    const Token& t = peek();
    if (t.type == Tok::Power || (t.type == Tok::Multiplicative && t.value == "*")) {
      ++i_;
      auto s = make(t.type == Tok::Power ? ExprKind::KwSpread : ExprKind::Spread, t.pos);
      s->kids.push_back(parse_expression());
      e.kids.push_back(std::move(s));
    } else {
      ExprPtr a = parse_expression();
      if (is(Tok::Equals)) {
        ++i_;
        if (a->kind != ExprKind::Name) fail(where(name_, a->pos), "expected a name before '=' in an argument list");
        auto kw = make(ExprKind::KeywordArg, a->pos, a->name);
        kw->kids.push_back(parse_expression());
        a = std::move(kw);
        keyword_seen = true;
      } else if (keyword_seen) {
        fail(where(name_, a->pos), "positional argument after a keyword argument");
      }
      e.kids.push_back(std::move(a));
    }
    if (is(Tok::Comma)) {
      ++i_;
    } else if (!is(Tok::RParen)) {
      unexpected(peek(), "',' or ')'");
    }
  }
  ++i_;
}

ExprPtr Parser::parse_member(ExprPtr object) {
  while (is(Tok::Dot) || is(Tok::LBracket)) {
    const Token& op = next();
    if (op.type == Tok::Dot) {
      const Token& prop = peek();
      if (prop.type == Tok::Ident) {
        auto e = make(ExprKind::Attribute, op.pos, next().value);
        e->kids.push_back(std::move(object));
        object = std::move(e);
      } else if (prop.type == Tok::Number && prop.value.find('.') == std::string::npos) {
        auto e = make(ExprKind::Subscript, op.pos);
        e->kids.push_back(std::move(object));
        e->kids.push_back(parse_primary());
        object = std::move(e);
      } else {
        unexpected(prop, "an attribute name after '.'");
      }
      continue;
    }
    auto e = make(ExprKind::Subscript, op.pos);
    e->kids.push_back(std::move(object));
    e->kids.push_back(parse_subscript(op));
    expect(Tok::RBracket, "']'");
    object = std::move(e);
  }
  return object;
}

// The inside of [ ]: an index or a slice a:b:c (each part optional).
ExprPtr Parser::parse_subscript(const Token& open) {
  std::vector<ExprPtr> parts;
  bool slice = false;
  parts.push_back(nullptr);
  while (!is(Tok::RBracket)) {
    if (is(Tok::Colon)) {
      ++i_;
      slice = true;
      parts.push_back(nullptr);
      if (parts.size() > 3) error(open, "a slice has at most three parts (start:stop:step)");
      continue;
    }
    if (parts.back()) unexpected(peek(), "':' or ']'");
    parts.back() = parse_expression();
  }
  if (!slice) {
    if (!parts[0]) error(open, "empty subscript []");
    return std::move(parts[0]);
  }
  auto e = make(ExprKind::Slice, open.pos);
  parts.resize(3);
  for (auto& p : parts) e->kids.push_back(std::move(p));
  return e;
}

ExprPtr Parser::parse_primary() {
  const Token& t = next();
  switch (t.type) {
    case Tok::Number: {
      auto e = make(ExprKind::Literal, t.pos);
      const double v = std::strtod(t.value.c_str(), nullptr);
      e->literal = t.value.find('.') != std::string::npos ? Value::floating(v) : Value::integer(v);
      return e;
    }
    case Tok::String: {
      auto e = make(ExprKind::Literal, t.pos);
      std::string s = t.value;
      while (is(Tok::String)) s += next().value;  // 'a' 'b' is 'ab'
      e->literal = Value::string(std::move(s));
      return e;
    }
    case Tok::Ident: return make(ExprKind::Name, t.pos, t.value);
    case Tok::LParen: {
      if (is(Tok::RParen)) {
        ++i_;
        return make(ExprKind::Tuple, t.pos);
      }
      ExprPtr e = parse_expression_sequence(false);
      expect(Tok::RParen, "')'");
      return e;
    }
    case Tok::LBracket: {
      auto e = make(ExprKind::List, t.pos);
      while (!is(Tok::RBracket)) {
        if (is(Tok::End)) unexpected(peek(), "']'");
        e->kids.push_back(parse_expression());
        if (is(Tok::Comma)) {
          ++i_;
        } else if (!is(Tok::RBracket)) {
          unexpected(peek(), "',' or ']'");
        }
      }
      ++i_;
      return e;
    }
    case Tok::LBrace: {
      auto e = make(ExprKind::Dict, t.pos);
      while (!is(Tok::RBrace)) {
        if (is(Tok::End)) unexpected(peek(), "'}'");
        e->kids.push_back(parse_expression());
        expect(Tok::Colon, "':' between a key and its value");
        e->kids.push_back(parse_expression());
        if (is(Tok::Comma)) {
          ++i_;
        } else if (!is(Tok::RBrace)) {
          unexpected(peek(), "',' or '}'");
        }
      }
      ++i_;
      return e;
    }
    default: unexpected(t, "an expression");
  }
}

}  // namespace dsv3::jinja
