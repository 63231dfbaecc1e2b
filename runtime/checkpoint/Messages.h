//===- Messages.h - pieces of checkpoint error messages ---------*- C++ -*-===//
//
// Errors are one line: names come from files and may hold any byte, so they
// are quotedName with escapes.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CHECKPOINT_MESSAGES_H
#define MOERT_CHECKPOINT_MESSAGES_H

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert::checkpoint_messages {

/// 'name' with control characters, quotes and backslashes escaped.
inline std::string quotedName(const std::string &name) {
  return absl::StrCat("'", absl::Utf8SafeCEscape(name), "'");
}

inline std::string shapeString(const std::vector<int64_t> &shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

} // namespace moert::checkpoint_messages

#endif // MOERT_CHECKPOINT_MESSAGES_H
