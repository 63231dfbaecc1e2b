//===- HFConfigTest.cpp - config.json parsing and its errors --------------===//
//
// Every bad config must fail with exactly one diagnostic, located at the
// field it is about, whose message names the field.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/HFConfig.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::moe;
namespace json = llvm::json;

namespace {
json::Object tinyLlama() {
  return json::Object{{"architectures", json::Array{"LlamaForCausalLM"}},
                      {"vocab_size", 256},
                      {"hidden_size", 64},
                      {"intermediate_size", 176},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 2},
                      {"rms_norm_eps", 1e-5},
                      {"torch_dtype", "float32"}};
}

json::Object tinyMixtral() {
  json::Object config = tinyLlama();
  config["architectures"] = json::Array{"MixtralForCausalLM"};
  config["num_local_experts"] = 4;
  config["num_experts_per_tok"] = 2;
  return config;
}

std::string render(json::Object object) {
  return llvm::formatv("{0:2}", json::Value(std::move(object))).str();
}

class HFConfigTest : public ::testing::Test {
protected:
  HFConfigTest() {
    context.getDiagEngine().registerHandler([this](Diagnostic &diagnostic) {
      std::string text;
      llvm::raw_string_ostream os(text);
      if (auto file = dyn_cast<FileLineColLoc>(diagnostic.getLocation()))
        os << file.getLine() << ":" << file.getColumn() << ": ";
      os << diagnostic;
      errors.push_back(text);
    });
  }

  FailureOr<HFConfig> parse(const std::string &text) {
    errors.clear();
    return parseHFConfig("config.json", text, &context);
  }

  /// Parses a config that must fail and returns its only error.
  std::string error(json::Object config) { return errorOf(render(config)); }
  std::string errorOf(const std::string &text) {
    FailureOr<HFConfig> parsed = parse(text);
    EXPECT_TRUE(failed(parsed)) << "accepted:\n" << text;
    EXPECT_EQ(errors.size(), 1u) << "for:\n" << text;
    return errors.empty() ? "" : errors.front();
  }

  MLIRContext context;
  std::vector<std::string> errors;
};

TEST_F(HFConfigTest, ParsesLlamaWithHuggingFaceDefaults) {
  json::Object config = tinyLlama();
  config.erase("num_key_value_heads");
  FailureOr<HFConfig> parsed = parse(render(config));
  ASSERT_TRUE(succeeded(parsed));
  EXPECT_EQ(parsed->architecture, Architecture::Llama);
  EXPECT_EQ(parsed->numKvHeads, 4);      // defaults to the attention heads
  EXPECT_EQ(parsed->headDim, 16);        // hidden_size / heads
  EXPECT_EQ(parsed->ropeTheta, 10000.0); // LlamaConfig default
  EXPECT_EQ(parsed->maxPositionEmbeddings, 2048);
  EXPECT_DOUBLE_EQ(parsed->initializerRange, 0.02);
  EXPECT_FALSE(parsed->tieWordEmbeddings);
  EXPECT_FALSE(parsed->isMoe());
}

TEST_F(HFConfigTest, ParsesQwenMoeWithTransformersDefaults) {
  json::Object config = tinyLlama();
  config["architectures"] = json::Array{"Qwen2MoeForCausalLM"};
  config["sliding_window"] = 4096; // ignored: use_sliding_window is false
  FailureOr<HFConfig> parsed = parse(render(config));
  ASSERT_TRUE(succeeded(parsed));
  EXPECT_EQ(parsed->modelType, "qwen2_moe");
  EXPECT_TRUE(parsed->qkvBias);
  EXPECT_EQ(parsed->numExperts, 60); // Qwen2MoeConfig defaults
  EXPECT_EQ(parsed->expertsPerToken, 4);
  EXPECT_EQ(parsed->expertIntermediateSize, 1408);
  EXPECT_EQ(parsed->sharedExpertIntermediateSize, 5632);
  EXPECT_FALSE(parsed->normTopkProb);
  EXPECT_EQ(parsed->maxPositionEmbeddings, 32768);
  EXPECT_EQ(parsed->expertCountKey(), "num_experts");
  EXPECT_EQ(parsed->ffnModuleName(0), "mlp");
  EXPECT_EQ(parsed->expertMatrixNames()[2], "down_proj");
}

TEST_F(HFConfigTest, SparseLayersFollowDecoderSparseStepAndMlpOnlyLayers) {
  json::Object config = tinyLlama();
  config["architectures"] = json::Array{"Qwen3MoeForCausalLM"};
  config["num_hidden_layers"] = 6;
  config["decoder_sparse_step"] = 2;
  config["mlp_only_layers"] = json::Array{3};
  FailureOr<HFConfig> parsed = parse(render(config));
  ASSERT_TRUE(succeeded(parsed));
  EXPECT_EQ(parsed->qkNorm, QKNorm::PerHead);
  std::vector<bool> sparse;
  for (int64_t layer = 0; layer < 6; ++layer)
    sparse.push_back(parsed->isSparseLayer(layer));
  EXPECT_EQ(sparse, (std::vector<bool>{false, true, false, false, false, true}));
}

TEST_F(HFConfigTest, OlmoeReadsClipAndNormalisesWholeProjections) {
  json::Object config = tinyLlama();
  config["architectures"] = json::Array{"OlmoeForCausalLM"};
  config["clip_qkv"] = 8.0;
  FailureOr<HFConfig> parsed = parse(render(config));
  ASSERT_TRUE(succeeded(parsed));
  EXPECT_EQ(parsed->qkNorm, QKNorm::Whole);
  EXPECT_EQ(parsed->clipQkv, 8.0);
  EXPECT_EQ(parsed->numExperts, 64);
  EXPECT_EQ(parsed->expertIntermediateSize, 176); // OLMoE's experts use intermediate_size
  EXPECT_FALSE(parsed->normTopkProb);
  for (int64_t layer = 0; layer < 2; ++layer)
    EXPECT_TRUE(parsed->isSparseLayer(layer));
}

TEST_F(HFConfigTest, ParsesMixtral) {
  FailureOr<HFConfig> parsed = parse(render(tinyMixtral()));
  ASSERT_TRUE(succeeded(parsed));
  EXPECT_TRUE(parsed->isMoe());
  EXPECT_EQ(parsed->numExperts, 4);
  EXPECT_EQ(parsed->expertsPerToken, 2);
  EXPECT_EQ(parsed->ropeTheta, 1e6); // MixtralConfig default
  EXPECT_DOUBLE_EQ(parsed->routerAuxLossCoef, 0.001);
}

TEST_F(HFConfigTest, HeadDimOverridesHiddenOverHeads) {
  json::Object config = tinyLlama();
  config["hidden_size"] = 60; // not divisible by 4 heads: fine with head_dim
  config["head_dim"] = 24;
  FailureOr<HFConfig> parsed = parse(render(config));
  ASSERT_TRUE(succeeded(parsed));
  EXPECT_EQ(parsed->headDim, 24);
}

TEST_F(HFConfigTest, ModelTypeStandsInForArchitectures) {
  json::Object config = tinyMixtral();
  config.erase("architectures");
  config["model_type"] = "mixtral";
  FailureOr<HFConfig> parsed = parse(render(config));
  ASSERT_TRUE(succeeded(parsed));
  EXPECT_EQ(parsed->architectureName, "MixtralForCausalLM");
}

TEST_F(HFConfigTest, MissingRequiredField) {
  for (StringRef key : {"vocab_size", "hidden_size", "intermediate_size",
                        "num_hidden_layers", "num_attention_heads"}) {
    json::Object config = tinyLlama();
    config.erase(key);
    EXPECT_EQ(error(std::move(config)),
              ("1:1: field '" + key + "': required field is missing").str());
  }
  json::Object config = tinyLlama();
  config.erase("architectures");
  EXPECT_EQ(error(std::move(config)),
            "1:1: field 'architectures': required field is missing (and "
            "there is no model_type)");
}

TEST_F(HFConfigTest, WrongJsonType) {
  json::Object config = tinyLlama();
  config["hidden_size"] = "64";
  EXPECT_EQ(error(std::move(config)),
            "5:3: field 'hidden_size': expected an integer, got a string");

  config = tinyLlama();
  config["tie_word_embeddings"] = 1;
  EXPECT_NE(error(std::move(config))
                .find("field 'tie_word_embeddings': expected true or false, "
                      "got a number"),
            std::string::npos);

  config = tinyLlama();
  config["rms_norm_eps"] = json::Array{1e-5};
  EXPECT_NE(error(std::move(config))
                .find("field 'rms_norm_eps': expected a number, got an array"),
            std::string::npos);

  config = tinyLlama();
  config["architectures"] = "LlamaForCausalLM";
  EXPECT_NE(error(std::move(config))
                .find("field 'architectures': expected a non-empty array of "
                      "strings, got a string"),
            std::string::npos);

  config = tinyLlama();
  config["num_attention_heads"] = 4.5;
  EXPECT_NE(error(std::move(config))
                .find("field 'num_attention_heads': expected an integer, got "
                      "a number"),
            std::string::npos);
}

TEST_F(HFConfigTest, ZeroOrNegativeSizes) {
  for (auto [key, value] : {std::pair<StringRef, int64_t>{"hidden_size", 0},
                            {"vocab_size", -5},
                            {"num_hidden_layers", 0},
                            {"intermediate_size", -1},
                            {"num_key_value_heads", 0}}) {
    json::Object config = tinyLlama();
    config[key] = value;
    std::string message = error(std::move(config));
    EXPECT_NE(message.find(("field '" + key + "': must be in [1, ").str()),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("got " + std::to_string(value)), std::string::npos)
        << message;
  }
  json::Object config = tinyLlama();
  config["rms_norm_eps"] = 0.0;
  EXPECT_NE(error(std::move(config))
                .find("field 'rms_norm_eps': must be > 0, got 0"),
            std::string::npos);
}

TEST_F(HFConfigTest, HiddenSizeNotDivisibleByHeads) {
  json::Object config = tinyLlama();
  config["hidden_size"] = 66;
  EXPECT_NE(error(std::move(config))
                .find("field 'hidden_size': hidden_size (66) is not divisible "
                      "by num_attention_heads (4)"),
            std::string::npos);
}

TEST_F(HFConfigTest, KvHeadsMustDivideHeads) {
  json::Object config = tinyLlama();
  config["num_key_value_heads"] = 3;
  EXPECT_NE(error(std::move(config))
                .find("field 'num_key_value_heads': num_key_value_heads (3) "
                      "must divide num_attention_heads (4)"),
            std::string::npos);
}

TEST_F(HFConfigTest, TopKLargerThanExperts) {
  json::Object config = tinyMixtral();
  config["num_experts_per_tok"] = 5;
  EXPECT_NE(error(std::move(config))
                .find("field 'num_experts_per_tok': num_experts_per_tok (5) "
                      "must not exceed num_local_experts (4)"),
            std::string::npos);
}

TEST_F(HFConfigTest, HugeDoublesAreOutOfRangeNotUndefined) {
  // llvm::json would cast 9.2e18 to int64 before checking its range (UB);
  // fuzzing found it.
  std::string text = render(tinyLlama());
  std::string field = "\"num_key_value_heads\": 2";
  size_t at = text.find(field);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, field.size(),
               "\"num_key_value_heads\": 9223372036854775758.0");
  EXPECT_NE(errorOf(text).find("field 'num_key_value_heads': must be in [1, "
                               "65536], got 9.223372e+18"),
            std::string::npos)
      << errorOf(text);
}

TEST_F(HFConfigTest, UnsupportedArchitectureListsSupportedOnes) {
  json::Object config = tinyLlama();
  config["architectures"] = json::Array{"GPT2LMHeadModel"};
  EXPECT_EQ(error(std::move(config)),
            "2:3: field 'architectures': unsupported architecture "
            "'GPT2LMHeadModel'; supported: LlamaForCausalLM, "
            "MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
            "Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, OlmoeForCausalLM");
}

TEST_F(HFConfigTest, MalformedJsonReportsLineAndColumn) {
  std::string message = errorOf("{\n  \"vocab_size\": 256,\n  oops\n}\n");
  EXPECT_EQ(message.substr(0, 3), "3:3") << message;
  EXPECT_NE(message.find("malformed JSON"), std::string::npos) << message;

  EXPECT_NE(errorOf("[1, 2]").find("expected a JSON object at the top level"),
            std::string::npos);
  EXPECT_NE(errorOf("").find("malformed JSON"), std::string::npos);
}

TEST_F(HFConfigTest, RejectsFeaturesThatWouldBeMisread) {
  json::Object config = tinyLlama();
  config["hidden_act"] = "gelu";
  EXPECT_NE(error(std::move(config)).find("field 'hidden_act'"),
            std::string::npos);

  config = tinyLlama();
  config["rope_scaling"] = json::Object{{"type", "linear"}, {"factor", 2.0}};
  EXPECT_NE(error(std::move(config)).find("rope scaling is not supported"),
            std::string::npos);

  config = tinyMixtral();
  config["sliding_window"] = 4096;
  EXPECT_NE(error(std::move(config)).find("field 'sliding_window'"),
            std::string::npos);

  config = tinyLlama();
  config["attention_bias"] = true;
  EXPECT_NE(error(std::move(config)).find("field 'attention_bias'"),
            std::string::npos);

  config = tinyLlama();
  config["torch_dtype"] = "int8";
  EXPECT_NE(error(std::move(config)).find("field 'torch_dtype'"),
            std::string::npos);

  // Nulls mean "not set", as transformers writes them.
  config = tinyMixtral();
  config["sliding_window"] = nullptr;
  config["rope_scaling"] = nullptr;
  EXPECT_TRUE(succeeded(parse(render(std::move(config)))));
}

TEST_F(HFConfigTest, UnreadableFileNamesThePath) {
  errors.clear();
  EXPECT_TRUE(failed(loadHFConfig("/nonexistent/model", &context)));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("cannot read"), std::string::npos);
}
} // namespace

// The refusals docs/errors.md listed as untested: each names its field.
TEST_F(HFConfigTest, RefusesOtherBadFields) {
  auto expectError = [&](json::Object config, const std::string &message) {
    std::string error = this->error(std::move(config));
    EXPECT_NE(error.find(message), std::string::npos) << error;
  };
  json::Object config = tinyLlama();
  config["hidden_act"] = 1;
  expectError(std::move(config), "field 'hidden_act': expected a string, got a number");

  config = tinyLlama();
  config.erase("architectures");
  config["model_type"] = "gpt2";
  expectError(std::move(config),
              "field 'model_type': unsupported architecture 'gpt2'; supported: ");

  config = tinyLlama();
  config["head_dim"] = 15;
  expectError(std::move(config),
              "field 'head_dim': the head dimension (15) must be even for "
              "rotary embeddings");

  config = tinyLlama();
  config["initializer_range"] = -1;
  expectError(std::move(config), "field 'initializer_range': must be >= 0, got ");

  config = tinyMixtral();
  config["router_aux_loss_coef"] = -0.5;
  expectError(std::move(config),
              "field 'router_aux_loss_coef': must be >= 0, got ");

  config = tinyMixtral();
  config["mlp_only_layers"] = "all";
  expectError(std::move(config),
              "field 'mlp_only_layers': expected an array of layer indices, "
              "got a string");

  config = tinyMixtral();
  config["mlp_only_layers"] = json::Array{0, 99};
  expectError(std::move(config),
              "field 'mlp_only_layers': entries must be layer indices in [0, ");
}
