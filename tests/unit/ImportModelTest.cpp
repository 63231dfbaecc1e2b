//===- ImportModelTest.cpp - every model in models/ imports and verifies --===//

#include "compiler/Registration.h"
#include "compiler/import/ImportModel.h"
#include "passes/ModelStats.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::moe;

namespace {
class ImportModelTest : public ::testing::Test {
protected:
  ImportModelTest() {
    DialectRegistry registry;
    registerAllMoecDialects(registry);
    context.appendDialectRegistry(registry);
  }

  OwningOpRef<ModuleOp> import(StringRef model) {
    std::string dir = (Twine(MOEC_MODELS_DIR) + "/" + model).str();
    FailureOr<HFConfig> config = loadHFConfig(dir, &context);
    if (failed(config))
      return nullptr;
    OwningOpRef<ModuleOp> module = importModel(*config, &context);
    if (failed(verify(*module)))
      return nullptr;
    return module;
  }

  ModelStats stats(StringRef model) {
    OwningOpRef<ModuleOp> module = import(model);
    EXPECT_TRUE(module) << model.str();
    if (!module)
      return {};
    FailureOr<ModelStats> stats = computeModelStats(*module, 4096);
    EXPECT_TRUE(succeeded(stats));
    return succeeded(stats) ? *stats : ModelStats{};
  }

  MLIRContext context;
};

std::vector<std::string> modelNames() {
  std::vector<std::string> names;
  std::error_code error;
  for (llvm::sys::fs::directory_iterator it(MOEC_MODELS_DIR, error), end;
       it != end && !error; it.increment(error))
    if (llvm::sys::fs::exists(it->path() + "/config.json"))
      names.push_back(llvm::sys::path::filename(it->path()).str());
  std::sort(names.begin(), names.end());
  return names;
}

TEST_F(ImportModelTest, EveryModelImportsAndVerifies) {
  std::vector<std::string> names = modelNames();
  EXPECT_GE(names.size(), 10u);
  for (const std::string &name : names)
    EXPECT_TRUE(import(name)) << name;
}

/// The paper's counts: 8x3.7B has 18.6B total and 5.9B active parameters.
TEST_F(ImportModelTest, PaperParameterCountsWithinOnePercent) {
  auto near = [](int64_t actual, double expected) {
    return std::abs(actual - expected) <= 0.01 * expected;
  };
  ModelStats big = stats("drop-upcycling-8x3.7b");
  EXPECT_TRUE(near(big.totalParams, 18.6e9)) << big.totalParams;
  EXPECT_TRUE(near(big.activeParams, 5.9e9)) << big.activeParams;
  ModelStats mid = stats("drop-upcycling-8x1.5b");
  EXPECT_TRUE(near(mid.totalParams, 9.0e9)) << mid.totalParams;
  EXPECT_TRUE(near(mid.activeParams, 2.6e9)) << mid.activeParams;
  ModelStats small = stats("drop-upcycling-8x152m");
  EXPECT_TRUE(near(small.totalParams, 0.42e9)) << small.totalParams;
  EXPECT_TRUE(near(small.activeParams, 0.19e9)) << small.activeParams;
  // Mistral's published figures for Mixtral-8x7B: 46.7B total, 12.9B active.
  ModelStats mixtral = stats("mixtral-8x7b");
  EXPECT_TRUE(near(mixtral.totalParams, 46.7e9)) << mixtral.totalParams;
  EXPECT_TRUE(near(mixtral.activeParams, 12.9e9)) << mixtral.activeParams;
}

/// Exact counts of the tiny models from the architecture's formula.
TEST_F(ImportModelTest, TinyModelCountsMatchTheFormula) {
  const int64_t v = 256, d = 64, layers = 2, heads = 4, kvHeads = 2, hd = 16;
  const int64_t attention = d * heads * hd * 2 + d * kvHeads * hd * 2;
  const int64_t norms = 2 * d;
  const int64_t embeddings = 2 * v * d + d; // embed, lm_head, final norm

  ModelStats dense = stats("tiny-llama");
  const int64_t denseFfn = 3 * d * 176;
  EXPECT_EQ(dense.totalParams, embeddings + layers * (attention + norms + denseFfn));
  EXPECT_EQ(dense.activeParams, dense.totalParams);
  EXPECT_EQ(dense.moeLayers, 0);

  ModelStats sparse = stats("tiny-mixtral");
  const int64_t experts = 4, k = 2, expertFfn = 3 * d * 128;
  const int64_t router = experts * d;
  EXPECT_EQ(sparse.totalParams,
            embeddings + layers * (attention + norms + router + experts * expertFfn));
  EXPECT_EQ(sparse.activeParams,
            embeddings + layers * (attention + norms + router + k * expertFfn));
  EXPECT_EQ(sparse.expertParams, layers * experts * expertFfn);
  EXPECT_EQ(sparse.moeLayers, 2);
  EXPECT_EQ(sparse.numExperts, 4);
  EXPECT_EQ(sparse.topK, 2);

  // Forward FLOPs: 2 per multiply-add of every matmul a token goes through,
  // plus attention over the average causal context (4096 + 1) / 2.
  const int64_t matmuls = 2 * (layers * (attention + router + k * expertFfn) + v * d);
  const int64_t attentionFlops = layers * 2 * heads * hd * (4096 + 1);
  EXPECT_EQ(sparse.attentionFlopsPerToken, attentionFlops);
  EXPECT_EQ(sparse.flopsPerToken, matmuls + attentionFlops);
}

TEST_F(ImportModelTest, TiedEmbeddingsShareTheTable) {
  HFConfig config;
  config.architectureName = "LlamaForCausalLM";
  config.path = "inline";
  config.vocabSize = 32;
  config.hiddenSize = 8;
  config.intermediateSize = 16;
  config.numLayers = 1;
  config.numHeads = 2;
  config.numKvHeads = 1;
  config.headDim = 4;
  config.rmsNormEps = 1e-6;
  config.ropeTheta = 1e4;
  config.torchDtype = "bfloat16";
  config.tieWordEmbeddings = true;
  OwningOpRef<ModuleOp> module = importModel(config, &context);
  ASSERT_TRUE(succeeded(verify(*module)));
  EXPECT_FALSE(module->lookupSymbol("lm_head.weight"));
  auto embed = module->lookupSymbol<ParamOp>("model.embed_tokens.weight");
  ASSERT_TRUE(embed);
  EXPECT_TRUE(embed.getTensorType().getElementType().isBF16());
}
} // namespace
