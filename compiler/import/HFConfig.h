//===- HFConfig.h - a Hugging Face config.json, validated ------*- C++ -*-===//
//
// The fields of a Hugging Face `config.json` that define a model of one of
// the supported architectures, validated. Every rule broken is reported as one MLIR diagnostic
// located at the offending field of the file.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_IMPORT_HFCONFIG_H
#define MOEC_IMPORT_HFCONFIG_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LLVM.h"

#include <array>
#include <string>
#include <vector>

namespace mlir::moe {

enum class Architecture { Llama, Mixtral, Qwen2, Qwen3, Qwen2Moe, Qwen3Moe, Olmoe };

/// Where an architecture normalises queries and keys before RoPE.
enum class QKNorm {
  None,
  /// Over each head's Dh features (Qwen3, Qwen3-MoE): weights [Dh].
  PerHead,
  /// Over the whole projection (OLMoE): weights [H*Dh] and [Hkv*Dh].
  Whole,
};

struct HFConfig {
  Architecture architecture = Architecture::Llama;
  /// The name as in `architectures`, e.g. "MixtralForCausalLM".
  std::string architectureName;
  /// transformers' model_type, e.g. "mixtral".
  std::string modelType;
  /// The file the config came from, for locations.
  std::string path;

  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  /// The dense FFN's width (Mixtral: the experts' width).
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

  /// q, k and v projections carry biases (Qwen2, Qwen2-MoE).
  bool qkvBias = false;
  QKNorm qkNorm = QKNorm::None;
  /// OLMoE's clip_qkv: q, k and v clamped to [-clipQkv, clipQkv]; 0: none.
  double clipQkv = 0;

  // Mixture of Experts (0 for dense models).
  int64_t numExperts = 0;
  int64_t expertsPerToken = 0;
  /// Each expert's FFN width (moe_intermediate_size; Mixtral's
  /// intermediate_size).
  int64_t expertIntermediateSize = 0;
  /// Qwen2-MoE's shared expert width; 0: no shared expert.
  int64_t sharedExpertIntermediateSize = 0;
  /// Whether the top-k routing weights are renormalised to sum 1.
  bool normTopkProb = true;
  double routerAuxLossCoef = 0;
  /// Every decoderSparseStep-th layer is sparse (Qwen-MoE).
  int64_t decoderSparseStep = 1;
  /// Layers that keep a dense FFN of intermediate_size in a MoE model.
  std::vector<int64_t> mlpOnlyLayers;

  bool isMoe() const { return numExperts > 0; }
  /// Whether layer `layer` has a sparse MoE block, as transformers decides.
  bool isSparseLayer(int64_t layer) const;
  /// The FFN module of each layer ("block_sparse_moe" for Mixtral's MoE
  /// layers, "mlp" otherwise).
  StringRef ffnModuleName(int64_t layer) const;
  /// The expert matrices' names, in the order gate, up, down.
  std::array<StringRef, 3> expertMatrixNames() const;
  /// The config key holding the expert count ("num_local_experts" for
  /// Mixtral, "num_experts" for the others).
  StringRef expertCountKey() const;
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
