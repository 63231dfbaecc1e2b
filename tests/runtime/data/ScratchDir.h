//===- ScratchDir.h - temporary directories for the data tests ------------===//

#ifndef MOERT_TESTS_DATA_SCRATCHDIR_H
#define MOERT_TESTS_DATA_SCRATCHDIR_H

#include "tests/runtime/TestDirs.h"

#include <string>

namespace moert::data::testing {

using moert::testing::readBytes;
using moert::testing::ScratchDirTest;
using moert::testing::writeBytes;

/// The committed corpus excerpt (tests/data/moby-dick-excerpt.txt).
inline std::string excerptPath() {
  return std::string(MOEC_TEST_DATA_DIR) + "/moby-dick-excerpt.txt";
}

} // namespace moert::data::testing

#endif // MOERT_TESTS_DATA_SCRATCHDIR_H
