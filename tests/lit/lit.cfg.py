# lit configuration of moec's compiler tests: one directory per concern
# (dialect, import, passes, plugin), FileCheck against the tools in build/bin.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "moec"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.substitutions.append(("%python", "/usr/bin/python3"))
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moec_obj_root, "tests", "lit")

config.substitutions.append(("%models", os.path.join(config.moec_src_root, "models")))
config.substitutions.append(("%moec_libs", config.moec_libs_dir))

llvm_config.with_system_environment(
    ["HOME", "TMP", "TEMP", "ASAN_OPTIONS", "UBSAN_OPTIONS"])
llvm_config.use_default_substitutions()
# --param runtime_tools_dir=DIR runs the runtime's tools from DIR (the
# sanitizer build, which has no compiler) and the compiler's from this build.
runtime_dirs = [config.moec_tools_dir]
if lit_config.params.get("runtime_tools_dir"):
    runtime_dirs.insert(0, lit_config.params["runtime_tools_dir"])
llvm_config.add_tool_substitutions(["moec", "moe-opt"], [config.moec_tools_dir])
llvm_config.add_tool_substitutions(["moe-run", "moe-data"], runtime_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# Tests that need a GPU, or its absence, say so with the 'cuda-device'
# feature: set when moe-run sees a CUDA device.
import subprocess
try:
    devices = subprocess.run([os.path.join(runtime_dirs[0], "moe-run"), "devices"],
                             capture_output=True, text=True, timeout=60).stdout
except (OSError, subprocess.SubprocessError):
    devices = ""
if any(line.startswith("cuda:0:") for line in devices.splitlines()):
    config.available_features.add("cuda-device")

# Tests of bf16 compute that expect the bf16 kernels (AVX512-BF16 dot
# products) say so with the 'avx512-bf16' feature.
try:
    with open("/proc/cpuinfo") as cpuinfo:
        if " avx512_bf16" in cpuinfo.read():
            config.available_features.add("avx512-bf16")
except OSError:
    pass
