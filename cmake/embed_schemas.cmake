# Writes OUT: a C++ source defining the control message schemas as strings,
#   jamnet::protocol::control::detail::kEmbeddedSchemas[] = {{"transport", "<json>"}, ...}
# keyed by the file name without ".schema.json". Run with cmake -P.
set(body "")
set(count 0)
separate_arguments(files UNIX_COMMAND "${SCHEMAS}")
list(SORT files)
foreach(f ${files})
  get_filename_component(name ${f} NAME)
  string(REGEX REPLACE "\\.schema\\.json$" "" key ${name})
  file(READ ${f} text)
  string(APPEND body "  {\"${key}\", R\"jamnetschema(${text})jamnetschema\"},\n")
  math(EXPR count "${count} + 1")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from schemas/control/*.schema.json by cmake/embed_schemas.cmake. Do not edit.
#include <cstddef>
#include <string_view>
#include <utility>

namespace jamnet::protocol::control::detail {
extern const std::pair<std::string_view, std::string_view> kEmbeddedSchemas[];
extern const std::size_t kEmbeddedSchemaCount;
const std::pair<std::string_view, std::string_view> kEmbeddedSchemas[] = {
${body}};
const std::size_t kEmbeddedSchemaCount = ${count};
}  // namespace jamnet::protocol::control::detail
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
