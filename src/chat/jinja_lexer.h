// Tokenizer of the Jinja renderer. Mirrors @huggingface/jinja's lexer, including its
// preprocessing with Hugging Face's settings: one trailing newline dropped, lstrip_blocks
// (spaces and tabs before a {% or {# at the start of a line removed), trim_blocks (the newline
// after %} #} -} removed) and transformers' {% generation %} tags removed. Every token keeps
// its line and column in the original source for error messages.
#pragma once

#include <string>
#include <vector>

namespace dsv3::jinja {

//! 1-based line and column (in code points) in the template source.
struct Pos {
  int line = 1, col = 1;
};

enum class Tok {
  Text,
  Number,
  String,
  Ident,
  Equals,          // =
  LParen,          // (
  RParen,          // )
  OpenStmt,        // {%
  CloseStmt,       // %}
  OpenExpr,        // {{
  CloseExpr,       // }}
  LBracket,        // [
  RBracket,        // ]
  LBrace,          // {
  RBrace,          // }
  Comma,           // ,
  Dot,             // .
  Colon,           // :
  Pipe,            // |
  Additive,        // + - ~
  Multiplicative,  // * / // %
  Power,           // **
  Comparison,      // < > <= >= == !=
  Unary,           // - + in front of an operand
  Comment,         // {# ... #}
  End,             // end of the template
};

struct Token {
  Tok type;
  std::string value;  // text, literal contents (escapes resolved), name or operator
  Pos pos;
};

//! "name:LINE:COL: " for error messages.
std::string where(const std::string& name, Pos pos);

//! Tokenizes `source`; the last token is Tok::End. A lexical error (bad character, unclosed
//! comment or string, bad escape) throws dsv3::Error "name:LINE:COL: message".
std::vector<Token> tokenize(const std::string& source, const std::string& name);

}  // namespace dsv3::jinja
