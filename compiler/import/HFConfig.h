//===- HFConfig.h - Hugging Face config.json of Llama/Mixtral ---*- C++ -*-===//
//
// The fields of a Hugging Face `config.json` that define a Llama or Mixtral
// model, validated. Every rule broken is reported as one MLIR diagnostic
// located at the offending field of the file.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_IMPORT_HFCONFIG_H
#define MOEC_IMPORT_HFCONFIG_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LLVM.h"

#include <string>
#include <vector>

namespace mlir::moe {

enum class Architecture { Llama, Mixtral };

struct HFConfig {
  Architecture architecture = Architecture::Llama;
  /// The name as in `architectures`, e.g. "MixtralForCausalLM".
  std::string architectureName;
  /// The file the config came from, for locations.
  std::string path;

  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;
  int64_t headDim = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 0;
  double ropeTheta = 0;
  double initializerRange = 0;
  bool tieWordEmbeddings = false;
  /// "float32", "bfloat16" or "float16".
  std::string torchDtype;

  // Mixtral only (0 for dense models).
  int64_t numExperts = 0;
  int64_t expertsPerToken = 0;
  double routerAuxLossCoef = 0;
  /// Layers that keep a dense FFN in a MoE model (Qwen2-MoE's field; what
  /// `moe-upcycle --layers` writes when not every layer becomes MoE).
  std::vector<int64_t> mlpOnlyLayers;

  bool isMoe() const { return architecture == Architecture::Mixtral; }
};

/// The architectures `parseHFConfig` accepts, comma separated.
StringRef supportedArchitectures();

/// Parses and validates `text`, the contents of the file `path`.
FailureOr<HFConfig> parseHFConfig(StringRef path, StringRef text,
                                  MLIRContext *context);

/// Reads and parses `path`: a config.json, or a directory holding one.
FailureOr<HFConfig> loadHFConfig(StringRef path, MLIRContext *context);

} // namespace mlir::moe

#endif // MOEC_IMPORT_HFCONFIG_H
