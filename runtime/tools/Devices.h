//===- Devices.h - choosing the backend a moe-run command uses --*- C++ -*-===//
//
// --device cpu (the default), cuda or cuda:N, shared by inference, training
// and generation; `moe-run devices` lists the backends this build has and
// the devices it sees.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TOOLS_DEVICES_H
#define MOERT_TOOLS_DEVICES_H

#include "runtime/comm/Parallelism.h"
#include "runtime/exec/Backend.h"

#include "absl/status/statusor.h"

#include <memory>
#include <ostream>

namespace moert::tools {

/// The backend --device names, for a run of `parallel`'s ranks (null: one
/// process). One clear error for an unknown name, a backend this build
/// lacks, or a device that is not there.
absl::StatusOr<std::unique_ptr<Backend>>
backendFromFlags(comm::Parallelism *parallel);

/// `moe-run devices`: the backends compiled in and the devices visible.
void listDevices(std::ostream &out);

} // namespace moert::tools

#endif // MOERT_TOOLS_DEVICES_H
