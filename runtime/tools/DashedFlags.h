//===- DashedFlags.h - parse --dashed-flags with Abseil ---------*- C++ -*-===//

#ifndef MOERT_TOOLS_DASHEDFLAGS_H
#define MOERT_TOOLS_DASHEDFLAGS_H

#include "absl/flags/parse.h"

#include <algorithm>
#include <string>
#include <vector>

namespace moert {

/// Parses the command line whose flags are spelled with dashes, as the
/// tools' contracts are (--logits-out), into Abseil flags (which are named
/// with underscores: logits_out); returns the positional arguments.
inline std::vector<std::string> parseDashedFlags(int argc, char **argv) {
  std::vector<std::string> spelled(argv, argv + argc);
  std::vector<char *> args;
  for (std::string &arg : spelled) {
    if (arg.rfind("--", 0) == 0)
      std::replace(arg.begin() + 2,
                   arg.begin() + std::min(arg.find('='), arg.size()), '-', '_');
    args.push_back(arg.data());
  }
  std::vector<char *> positional =
      absl::ParseCommandLine(int(args.size()), args.data());
  return std::vector<std::string>(positional.begin(), positional.end());
}

} // namespace moert

#endif // MOERT_TOOLS_DASHEDFLAGS_H
