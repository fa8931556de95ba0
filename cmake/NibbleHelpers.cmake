# Helpers shared by every folder: warnings, sanitizers, layer libraries, tests.

# -Wno-missing-field-initializers: aggregates with defaulted trailing members (e.g.
# WriteTensor::produce) are initialised without them on purpose.
set(NIBBLE_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
if(NIBBLE_WERROR)
  list(APPEND NIBBLE_WARNINGS -Werror)
endif()
# g++ 12 at -O2/-O3 reports false positives from inlined libstdc++ code (std::string,
# std::vector, std::variant: GCC bugs 105329, 105651, 107138). These flow-sensitive
# warnings stay on, with -Werror, in the -O1 debug and sanitizer builds that run
# the tests; optimised builds leave them out.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND NIBBLE_WARNINGS
       "$<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:-Wno-restrict;-Wno-maybe-uninitialized;-Wno-array-bounds;-Wno-stringop-overflow;-Wno-stringop-overread>")
endif()

if(NIBBLE_SANITIZE)
  add_compile_options(-fsanitize=${NIBBLE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${NIBBLE_SANITIZE})
endif()

# Highway: compile only the x86 targets that matter on the machines we run on
# (EMU128 fallback, AVX2, AVX3, AVX3_DL); SSSE3/SSE4 are skipped to halve build time.
set(NIBBLE_HWY_DEFS HWY_WANT_AVX3_DL=1 "HWY_DISABLED_TARGETS=(HWY_SSSE3|HWY_SSE4)")

# nibble_add_library(<layer> DEPS <targets...>)
# One static library per src/ layer, named nibble_<layer>. Its sources are every
# *.cc in the folder (recursively) that is not a test, bench or fuzz file.
function(nibble_add_library layer)
  cmake_parse_arguments(ARG "" "" "DEPS;EXTERNAL" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "(_test|_bench|_fuzz)\\.cc$")
  add_library(nibble_${layer} STATIC ${srcs})
  target_include_directories(nibble_${layer} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(nibble_${layer} PRIVATE ${NIBBLE_WARNINGS})
  target_compile_definitions(nibble_${layer} PUBLIC ${NIBBLE_HWY_DEFS} NIBBLE_BUILDING=1)
  set_target_properties(nibble_${layer} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(nibble_${layer} PUBLIC ${ARG_DEPS} ${ARG_EXTERNAL})
  # Unit tests live next to their code: every *_test.cc under this folder
  # becomes one test binary per layer.
  if(NIBBLE_BUILD_TESTS)
    file(GLOB_RECURSE tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
    if(tests)
      nibble_add_test(${layer}_test SOURCES ${tests} DEPS nibble_${layer} LABEL ${NIBBLE_TEST_LABEL_${layer}})
    endif()
  endif()
endfunction()

# ctest labels by what a test binary exercises (scripts/test.sh reruns labels under
# NIBBLE_CPU caps): "kernel" (core, kernels, quant: every kernel against its Ref),
# "model" (model, api, e2e: greedy-text and logits goldens, bnb checkpoints, quantized
# generation, perplexity/KLD, the CLI), "format" (io, tokenizer: parsers and writers).
set(NIBBLE_TEST_LABEL_core kernel)
set(NIBBLE_TEST_LABEL_kernels kernel)
set(NIBBLE_TEST_LABEL_quant kernel)
set(NIBBLE_TEST_LABEL_model model)
set(NIBBLE_TEST_LABEL_optim kernel)
set(NIBBLE_TEST_LABEL_peft model)
set(NIBBLE_TEST_LABEL_train model)
set(NIBBLE_TEST_LABEL_api model)
set(NIBBLE_TEST_LABEL_io format)
set(NIBBLE_TEST_LABEL_tokenizer format)

# nibble_add_test(<name> SOURCES ... DEPS ... [LABEL kernel|model|format])
function(nibble_add_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_LABEL)
    message(FATAL_ERROR "nibble_add_test(${name}): no LABEL (kernel, model or format)")
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${NIBBLE_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} nibble_testutil GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    NIBBLE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    NIBBLE_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS ${ARG_LABEL})
endfunction()
