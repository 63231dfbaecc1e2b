//===- DashedFlags.h - parse --dashed-flags with Abseil ---------*- C++ -*-===//

#ifndef MOERT_TOOLS_DASHEDFLAGS_H
#define MOERT_TOOLS_DASHEDFLAGS_H

#include "runtime/base/Printable.h"

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace moert {

/// --help: the usage message, then every flag of the tools in their dashed
/// spelling with its help and default, one a line; exit status 0.
[[noreturn]] inline void printHelp() {
  std::vector<std::pair<std::string, const absl::CommandLineFlag *>> flags;
  for (const auto &[name, flag] : absl::GetAllFlags())
    if (flag->Filename().find("runtime/tools/") != std::string::npos) {
      std::string dashed(name);
      std::replace(dashed.begin(), dashed.end(), '_', '-');
      flags.emplace_back(dashed, flag);
    }
  std::sort(flags.begin(), flags.end());
  std::cout << absl::ProgramUsageMessage() << "\n\nflags:\n";
  for (const auto &[name, flag] : flags)
    std::cout << "  --" << name << ": " << flag->Help() << " (default: '"
              << flag->DefaultValue() << "')\n";
  std::exit(0);
}

/// The flag `name` (underscored, without dashes) names, or null; Abseil's
/// boolean flags also take a `no` prefix.
inline const absl::CommandLineFlag *findFlag(const std::string &name) {
  if (const absl::CommandLineFlag *flag = absl::FindCommandLineFlag(name))
    return flag;
  if (name.rfind("no", 0) != 0)
    return nullptr;
  const absl::CommandLineFlag *flag = absl::FindCommandLineFlag(name.substr(2));
  return flag && flag->IsOfType<bool>() ? flag : nullptr;
}

/// Whether `name` (underscored) is no_x for a boolean flag x, the dashed
/// spelling of false (--no-repack-experts).
inline bool isNegatedBool(const std::string &name) {
  if (name.rfind("no_", 0) != 0 || absl::FindCommandLineFlag(name))
    return false;
  const absl::CommandLineFlag *flag = absl::FindCommandLineFlag(name.substr(3));
  return flag && flag->IsOfType<bool>();
}

/// Parses the command line whose flags are spelled with dashes, as the
/// tools' contracts are (--logits-out), into Abseil flags (which are named
/// with underscores: logits_out); returns the positional arguments. An
/// unknown flag is one line and exit status 1, as every other bad input.
inline std::vector<std::string> parseDashedFlags(int argc, char **argv) {
  std::vector<std::string> spelled(argv, argv + argc);
  std::vector<char *> args;
  bool flagsEnd = false, valueNext = false; // `--flag value`: not a flag
  for (size_t i = 0; i < spelled.size(); ++i) {
    std::string &arg = spelled[i];
    bool isFlag = i > 0 && !flagsEnd && !valueNext && arg.size() > 1 &&
                  arg[0] == '-';
    valueNext = false;
    if (isFlag && arg == "--") {
      flagsEnd = true;
    } else if (isFlag) {
      size_t dashes = arg.rfind("--", 0) == 0 ? 2 : 1;
      size_t end = std::min(arg.find('='), arg.size());
      std::replace(arg.begin() + dashes, arg.begin() + end, '-', '_');
      std::string name = arg.substr(dashes, end - dashes);
      if (isNegatedBool(name)) { // --no-x: Abseil's --nox
        name = "no" + name.substr(3);
        arg = arg.substr(0, dashes) + name + arg.substr(end);
      }
      if (name == "help" || name == "helpfull")
        printHelp();
      const absl::CommandLineFlag *flag = findFlag(name);
      if (!flag) {
        std::string program = spelled[0].substr(spelled[0].rfind('/') + 1);
        std::cerr << program << ": error: unknown flag '" << printable(std::string_view(argv[i]))
                  << "'; see --help\n";
        std::exit(1);
      }
      valueNext = end == arg.size() && !flag->IsOfType<bool>();
    }
    args.push_back(arg.data());
  }
  std::vector<char *> positional =
      absl::ParseCommandLine(int(args.size()), args.data());
  return std::vector<std::string>(positional.begin(), positional.end());
}

} // namespace moert

#endif // MOERT_TOOLS_DASHEDFLAGS_H
