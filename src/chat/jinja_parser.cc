// Statements of the Jinja parser (the Parser class is in jinja_parser.h).
#include "chat/jinja_parser.h"

namespace dsv3::jinja {

Body Parser::parse_all() {
  Body body;
  while (!is(Tok::End)) add(body, parse_any());
  return body;
}

std::unique_ptr<Stmt> Parser::parse_any() {
  const Token& t = peek();
  switch (t.type) {
    case Tok::Comment: ++i_; return nullptr;
    case Tok::Text: {
      auto s = std::make_unique<Stmt>(StmtKind::Text, t.pos);
      s->text = next().value;
      return s;
    }
    case Tok::OpenStmt: return parse_statement();
    case Tok::OpenExpr: {
      auto s = std::make_unique<Stmt>(StmtKind::Output, next().pos);
      s->expr = parse_expression();
      expect(Tok::CloseExpr, "'}}'");
      return s;
    }
    default: unexpected(t, "text, '{{' or '{%'");
  }
}

// Statements up to one of `ends` (not consumed); `opener` is the tag reported when the
// template ends first.
Body Parser::parse_block(std::initializer_list<const char*> ends, const Token& opener, const char* end_tag) {
  Nest nest(*this);
  Body body;
  open_.push_back({&opener, end_tag});
  while (!is_stmt(ends)) {
    if (is(Tok::End)) error(opener, "unclosed '" + opener.value + "' block: expected {% " + end_tag + " %}");
    add(body, parse_any());
  }
  open_.pop_back();
  return body;
}

void Parser::expect_end_tag(const char* word) {
  expect(Tok::OpenStmt, std::string("{% ") + word + " %}");
  if (!is_ident(word)) unexpected(peek(), std::string("'") + word + "'");
  ++i_;
  expect(Tok::CloseStmt, "'%}'");
}

std::unique_ptr<Stmt> Parser::parse_statement() {
  ++i_;  // {%
  if (!is(Tok::Ident)) unexpected(peek(), "a tag name after '{%'");
  const Token& tag = next();
  const std::string& w = tag.value;
  std::unique_ptr<Stmt> s;
  if (w == "set") {
    s = parse_set(tag);
  } else if (w == "if") {
    s = parse_if(tag);
    expect_end_tag("endif");
  } else if (w == "for") {
    s = parse_for(tag);
    expect_end_tag("endfor");
  } else if (w == "macro") {
    s = parse_macro(tag);
    expect_end_tag("endmacro");
  } else if (w == "call") {
    s = parse_call_block(tag);
    expect_end_tag("endcall");
  } else if (w == "filter") {
    s = parse_filter_block(tag);
    expect_end_tag("endfilter");
  } else if (w == "break" || w == "continue") {
    if (loop_depth_ == 0) error(tag, "'" + w + "' outside of a for loop");
    s = std::make_unique<Stmt>(w == "break" ? StmtKind::Break : StmtKind::Continue, tag.pos);
    expect(Tok::CloseStmt, "'%}'");
  } else if (w == "elif" || w == "else" || w.rfind("end", 0) == 0) {
    if (open_.empty()) error(tag, "unexpected '{% " + w + " %}' with no open block it could close");
    const OpenBlock& b = open_.back();
    error(tag, "unexpected '{% " + w + " %}': the innermost open block is '" + b.tag->value + "' at " +
                   std::to_string(b.tag->pos.line) + ":" + std::to_string(b.tag->pos.col) + ", which needs {% " +
                   b.end_tag + " %}");
  } else {
    error(tag, "unknown tag '" + w + "'");
  }
  return s;
}

void Parser::check_target(const Expr& e, bool allow_attribute) {
  if (e.kind == ExprKind::Name) return;
  if (allow_attribute && e.kind == ExprKind::Attribute) return;
  if (e.kind == ExprKind::Tuple) {
    for (const auto& k : e.kids)
      if (k->kind != ExprKind::Name) error(t_[i_ - 1], "can only unpack into plain names");
    return;
  }
  fail(where(name_, e.pos), "cannot assign to this expression (expected a name, a tuple of names or ns.attribute)");
}

std::unique_ptr<Stmt> Parser::parse_set(const Token& tag) {
  ExprPtr target = parse_expression_sequence(false);
  check_target(*target, true);
  if (is(Tok::Equals)) {
    ++i_;
    auto s = std::make_unique<Stmt>(StmtKind::Set, tag.pos);
    s->target = std::move(target);
    s->expr = parse_expression_sequence(false);
    expect(Tok::CloseStmt, "'%}'");
    return s;
  }
  expect(Tok::CloseStmt, "'=' or '%}'");
  auto s = std::make_unique<Stmt>(StmtKind::SetBlock, tag.pos);
  s->target = std::move(target);
  s->body = parse_block({"endset"}, tag, "endset");
  expect_end_tag("endset");
  return s;
}

std::unique_ptr<Stmt> Parser::parse_if(const Token& tag) {
  auto s = std::make_unique<Stmt>(StmtKind::If, tag.pos);
  s->expr = parse_expression();
  expect(Tok::CloseStmt, "'%}'");
  s->body = parse_block({"elif", "else", "endif"}, tag, "endif");
  if (is_stmt({"elif"})) {
    ++i_;
    const Token& elif = next();
    s->orelse.push_back(parse_if(elif));
  } else if (is_stmt({"else"})) {
    i_ += 2;
    expect(Tok::CloseStmt, "'%}'");
    s->orelse = parse_block({"endif"}, tag, "endif");
  }
  return s;
}

std::unique_ptr<Stmt> Parser::parse_for(const Token& tag) {
  auto s = std::make_unique<Stmt>(StmtKind::For, tag.pos);
  s->target = parse_expression_sequence(true);
  if (s->target->kind != ExprKind::Name && s->target->kind != ExprKind::Tuple)
    fail(where(name_, s->target->pos), "expected a name or a tuple of names after 'for'");
  check_target(*s->target, false);
  if (!is_ident("in")) unexpected(peek(), "'in'");
  ++i_;
  ExprPtr iter = parse_expression();
  if (iter->kind == ExprKind::Select) {  // for x in xs if cond
    s->cond = std::move(iter->kids[1]);
    iter = std::move(iter->kids[0]);
  }
  s->expr = std::move(iter);
  expect(Tok::CloseStmt, "'%}'");
  ++loop_depth_;
  s->body = parse_block({"endfor", "else"}, tag, "endfor");
  --loop_depth_;
  if (is_stmt({"else"})) {
    i_ += 2;
    expect(Tok::CloseStmt, "'%}'");
    s->orelse = parse_block({"endfor"}, tag, "endfor");
  }
  return s;
}

std::vector<Param> Parser::parse_params() {
  std::vector<Param> params;
  ExprPtr call = std::make_unique<Expr>(ExprKind::Call, peek().pos);
  parse_args(*call);
  for (auto& a : call->kids) {
    if (a->kind == ExprKind::Name) {
      params.push_back(Param{a->name, nullptr});
    } else if (a->kind == ExprKind::KeywordArg) {
      params.push_back(Param{a->name, std::move(a->kids[0])});
    } else {
      fail(where(name_, a->pos), "expected a parameter name");
    }
    for (size_t k = 0; k + 1 < params.size(); ++k)
      if (params[k].name == params.back().name)
        fail(where(name_, a->pos), "duplicate parameter '" + params.back().name + "'");
  }
  return params;
}

std::unique_ptr<Stmt> Parser::parse_macro(const Token& tag) {
  auto s = std::make_unique<Stmt>(StmtKind::Macro, tag.pos);
  if (!is(Tok::Ident)) unexpected(peek(), "a macro name");
  s->text = next().value;
  if (!is(Tok::LParen)) unexpected(peek(), "'(' after the macro name");
  s->params = parse_params();
  expect(Tok::CloseStmt, "'%}'");
  const int saved = loop_depth_;
  loop_depth_ = 0;
  s->body = parse_block({"endmacro"}, tag, "endmacro");
  loop_depth_ = saved;
  return s;
}

std::unique_ptr<Stmt> Parser::parse_call_block(const Token& tag) {
  auto s = std::make_unique<Stmt>(StmtKind::CallBlock, tag.pos);
  if (is(Tok::LParen)) s->params = parse_params();
  if (!is(Tok::Ident)) unexpected(peek(), "the name of the macro to call");
  auto callee = std::make_unique<Expr>(ExprKind::Name, peek().pos);
  callee->name = next().value;
  if (!is(Tok::LParen)) unexpected(peek(), "'(' after the macro name");
  auto call = std::make_unique<Expr>(ExprKind::Call, callee->pos);
  call->kids.push_back(std::move(callee));
  parse_args(*call);
  s->expr = std::move(call);
  expect(Tok::CloseStmt, "'%}'");
  s->body = parse_block({"endcall"}, tag, "endcall");
  return s;
}

std::unique_ptr<Stmt> Parser::parse_filter_block(const Token& tag) {
  auto s = std::make_unique<Stmt>(StmtKind::FilterBlock, tag.pos);
  if (!is(Tok::Ident)) unexpected(peek(), "a filter name");
  auto f = std::make_unique<Expr>(ExprKind::Filter, peek().pos);
  f->name = next().value;
  f->kids.push_back(nullptr);  // the operand: the rendered body
  if (is(Tok::LParen)) {
    f->flag = true;
    parse_args(*f);
  }
  s->expr = std::move(f);
  expect(Tok::CloseStmt, "'%}'");
  s->body = parse_block({"endfilter"}, tag, "endfilter");
  return s;
}

std::unique_ptr<Program> parse_template(const std::string& source, const std::string& name) {
  const std::vector<Token> tokens = tokenize(source, name);
  auto program = std::make_unique<Program>();
  program->name = name;
  program->body = Parser(tokens, name).parse_all();
  return program;
}

}  // namespace dsv3::jinja
