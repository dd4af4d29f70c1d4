# Writes OUT, a C++ source defining `std::string_view NAME()` with the bytes of IN: the chat
# page is compiled into the binary, so `dsv3 serve` needs no files beside it.
# Usage: cmake -DIN=file -DOUT=file.cc -DNAME=fn -DNAMESPACE=ns -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/embed.cmake; do not edit.\n#include <string_view>\n\nnamespace ${NAMESPACE} {\nnamespace {\nconst unsigned char kBytes[] = {\n${body}0};\n}  // namespace\n\nstd::string_view ${NAME}() { return {reinterpret_cast<const char*>(kBytes), ${bytes}}; }\n\n}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUT}.tmp" "${OUT}")
