# Finds MLIR 22 and sets up its CMake helpers for everything the compiler builds.
# The whole compiler links the monolithic libMLIR.so (never the static component
# libraries too): one copy of every TypeID, so pass and dialect plugins loaded
# into moe-opt see the same dialects as the tool.
find_package(MLIR REQUIRED CONFIG HINTS /usr/lib/llvm-22/lib/cmake/mlir)
if(NOT LLVM_VERSION_MAJOR EQUAL 22)
  message(FATAL_ERROR "moec needs MLIR 22, found ${LLVM_PACKAGE_VERSION} at "
                      "${MLIR_DIR}; run scripts/install-deps.sh")
endif()
message(STATUS "Using MLIR ${LLVM_PACKAGE_VERSION} from ${MLIR_DIR}")

list(APPEND CMAKE_MODULE_PATH ${MLIR_CMAKE_DIR} ${LLVM_CMAKE_DIR})
set(LLVM_RUNTIME_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/bin)
set(LLVM_LIBRARY_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/lib)
set(MLIR_BINARY_DIR ${CMAKE_BINARY_DIR})
set(MLIR_LINK_MLIR_DYLIB ON)

include(TableGen)
include(AddLLVM)
include(AddMLIR)
include(HandleLLVMOptions)

# LLVM's convention: the project's -Wextra comes after HandleLLVMOptions'
# -Wno-unused-parameter and would turn it back on for the code TableGen
# writes (hundreds of warnings under clang).
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Wno-unused-parameter>)

include_directories(SYSTEM ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
include_directories(${MOEC_SOURCE_DIR} ${MOEC_BINARY_DIR})
link_directories(${LLVM_BUILD_LIBRARY_DIR})
separate_arguments(LLVM_DEFINITIONS_LIST NATIVE_COMMAND ${LLVM_DEFINITIONS})
add_definitions(${LLVM_DEFINITIONS_LIST})

if(NOT LLVM_EXTERNAL_LIT)
  set(LLVM_EXTERNAL_LIT ${LLVM_TOOLS_BINARY_DIR}/lit)
endif()
