//===- KernelSite.cpp - a program's kernels in the model's terms ----------===//

#include "runtime/profile/KernelSite.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

#include <cctype>

namespace moert::profile {
namespace {

std::string describeValues(const fb::Model &model,
                           const flatbuffers::Vector<int32_t> &ids) {
  std::string text;
  for (int32_t id : ids) {
    const fb::Value &value = *model.values()->Get(id);
    absl::StrAppend(&text, text.empty() ? "" : " ",
                    absl::AsciiStrToLower(dtypeName(fromSchema(value.dtype()))),
                    "[");
    for (size_t i = 0; i < value.shape()->size(); ++i)
      absl::StrAppend(&text, i ? "x" : "", value.shape()->Get(i));
    absl::StrAppend(&text, "]");
  }
  return text;
}

/// "model.layers.3" from "model.layers.3.self_attn.q_proj"; other names
/// ("model.embed_tokens", "lm_head") stand for themselves.
std::string layerOf(std::string_view where) {
  size_t at = where.find("layers.");
  if (at == std::string_view::npos)
    return std::string(where);
  size_t end = at + 7;
  while (end < where.size() && std::isdigit(static_cast<unsigned char>(where[end])))
    ++end;
  return std::string(where.substr(0, end));
}

} // namespace

std::vector<KernelSite> describeProgram(const fb::Model &model,
                                        const fb::Program &program) {
  std::vector<KernelSite> sites;
  for (const fb::Kernel *kernel : *program.kernels()) {
    KernelSite site;
    site.kernel = kernel->kernel()->str();
    site.location = kernel->location()->str();
    // "moe.linear at model.layers.0.self_attn.q_proj (config.json:1:1)"
    std::string_view text = site.location;
    std::string_view op = text.substr(0, text.find_first_of(" ("));
    std::string_view where;
    if (size_t at = text.find(" at "); at != std::string_view::npos) {
      where = text.substr(at + 4);
      where = where.substr(0, where.find(" ("));
    }
    if (op.substr(0, 4) == "moe.")
      op.remove_prefix(4);
    site.op = std::string(op);
    site.name = where.empty() ? site.op : std::string(where) + "/" + site.op;
    site.layer = where.empty() ? "(model)" : layerOf(where);
    site.operands = describeValues(model, *kernel->operands());
    site.results = describeValues(model, *kernel->results());
    for (int32_t id : *kernel->operands())
      if (model.values()->Get(id)->dtype() == fb::DType::BF16)
        site.computeType = DType::kBF16;
    site.cost = kernelCost(model, *kernel);
    sites.push_back(std::move(site));
  }
  return sites;
}

} // namespace moert::profile
