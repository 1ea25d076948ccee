# Helpers shared by every folder: warnings, sanitizers, ipc_add_tool and the test registration.

# Compile options for everything we build (not for third-party code).
add_library(ipc_options INTERFACE)
target_compile_options(ipc_options INTERFACE -Wall -Wextra -Wconversion -Wshadow)
if(IPC_WERROR)
  target_compile_options(ipc_options INTERFACE -Werror)
endif()
if(IPC_SANITIZE)
  target_compile_options(ipc_options INTERFACE -fsanitize=${IPC_SANITIZE} -fno-omit-frame-pointer
                                               -fno-sanitize-recover=all)
  target_link_options(ipc_options INTERFACE -fsanitize=${IPC_SANITIZE})
endif()
if(IPC_FUZZ)  # coverage for libFuzzer in everything; tests/fuzz links its targets with -fsanitize=fuzzer
  target_compile_options(ipc_options INTERFACE -fsanitize=fuzzer-no-link)
endif()

if(IPC_TESTS)
  find_program(BATS_EXECUTABLE bats)
  if(NOT BATS_EXECUTABLE)
    message(FATAL_ERROR "IPC_TESTS is on but 'bats' was not found: apt-get install bats bats-assert "
                        "bats-support (or configure with -DIPC_TESTS=OFF)")
  endif()
  foreach(_lib bats-support bats-assert)
    if(NOT EXISTS "/usr/lib/bats/${_lib}/load.bash")
      message(FATAL_ERROR "IPC_TESTS is on but ${_lib} is missing: apt-get install ${_lib}")
    endif()
  endforeach()
endif()

# ipc_add_tool(name [SOURCES extra.cpp...] [LIBS lib...] [THREADED])
#   Builds <name>.cpp of the calling folder into build/bin/<name>, and registers
#   tests/<folder>/<name>.bats with CTest (it must exist: every tool has its tests).
#   The test sees TOOL=<path of the tool> and BIN=<folder of all tools>.
#   THREADED: the tool runs threads, so its bats test also runs under the tsan preset.
function(ipc_add_tool name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "THREADED" "" "SOURCES;LIBS")
  add_executable(${name} ${name}.cpp ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ipc_common ${ARG_LIBS})
  if(IPC_TESTS)
    cmake_path(GET CMAKE_CURRENT_SOURCE_DIR FILENAME chapter)
    set(bats_file "${PROJECT_SOURCE_DIR}/tests/${chapter}/${name}.bats")
    if(NOT EXISTS "${bats_file}")
      message(FATAL_ERROR "tool ${name} has no test: ${bats_file} is missing")
    endif()
    set(threaded_label "")
    if(ARG_THREADED)
      set(threaded_label ";threaded")
    endif()
    add_test(NAME ${chapter}/${name}
             COMMAND ${BATS_EXECUTABLE} --print-output-on-failure "${bats_file}")
    set_tests_properties(${chapter}/${name} PROPERTIES
      LABELS "bats;${chapter}${threaded_label}"
      ENVIRONMENT "TOOL=$<TARGET_FILE:${name}>;BIN=$<TARGET_FILE_DIR:${name}>;IPC_SANITIZE=${IPC_SANITIZE}"
      TIMEOUT 600)
  endif()
endfunction()

# ipc_add_unit_test(name SOURCES a.cpp... [LIBS lib...] [THREADED])
#   A GoogleTest program from tests/unit/. THREADED ones also run under the tsan preset.
function(ipc_add_unit_test name)
  if(NOT IPC_TESTS)
    return()
  endif()
  cmake_parse_arguments(PARSE_ARGV 1 ARG "THREADED" "" "SOURCES;LIBS")
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ipc_common GTest::gtest_main ${ARG_LIBS})
  target_include_directories(${name} PRIVATE "${PROJECT_SOURCE_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
  add_test(NAME unit/${name} COMMAND ${name} --gtest_brief=1)
  set(labels "unit")
  if(ARG_THREADED)
    set(labels "unit;threaded")
  endif()
  set_tests_properties(unit/${name} PROPERTIES LABELS "${labels}" TIMEOUT 600)
endfunction()

if(IPC_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
