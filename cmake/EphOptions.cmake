# Build options shared by every target: warnings as errors, sanitizers chosen by one option.
option(EPH_WERROR "Treat compiler warnings as errors" ON)
set(EPH_SANITIZE "" CACHE STRING "Sanitizers to build with, e.g. address,undefined (empty: none)")
option(EPH_FUZZ "Build libFuzzer targets (needs clang)" OFF)
option(EPH_BUILD_BENCH "Build the benchmarks in bench/" ON)

add_library(eph_build_flags INTERFACE)
target_compile_options(eph_build_flags INTERFACE -Wall -Wextra -Wpedantic
                       $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
                       -Wnon-virtual-dtor -Wimplicit-fallthrough
                       # Designated initializers that leave members at their defaults are intended.
                       -Wno-missing-field-initializers)
if(EPH_WERROR)
  target_compile_options(eph_build_flags INTERFACE -Werror)
endif()
# Boost.Asio: no deprecated interfaces, and one definition everywhere so ODR holds.
target_compile_definitions(eph_build_flags INTERFACE BOOST_ASIO_NO_DEPRECATED
                           BOOST_BEAST_USE_STD_STRING_VIEW)
target_include_directories(eph_build_flags INTERFACE ${PROJECT_SOURCE_DIR})

if(EPH_SANITIZE)
  string(REPLACE "," ";" _eph_sans "${EPH_SANITIZE}")
  foreach(_san IN LISTS _eph_sans)
    add_compile_options(-fsanitize=${_san})
    add_link_options(-fsanitize=${_san})
  endforeach()
  add_compile_options(-fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fno-sanitize-recover=all)
  # gcc warns that ThreadSanitizer does not model std::atomic_thread_fence, which Boost.Asio's
  # fenced_block uses around handler calls. Its handoffs also go through a mutex, which TSan does
  # model; a report a fence would have prevented would show up in the tsan run, not be hidden.
  if("thread" IN_LIST _eph_sans AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-tsan)
  endif()
endif()

# A fuzz build instruments every library it compiles with coverage, ASan and UBSan, so a target
# that links whole libraries (api_request_fuzz links eph_api, the store, the HTTP types) is guided
# through their code and checked inside it. Each fuzz target adds -fsanitize=fuzzer at link time,
# which brings in libFuzzer's main.
if(EPH_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "EPH_FUZZ needs clang (libFuzzer); use the fuzz preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()

# The allocator the daemon and the gateway benchmark link. jemalloc (Debian libjemalloc-dev)
# keeps per-thread caches, so the gateway's and the API's many small per-request allocations
# (Beast header fields, coroutine frames) cost a fraction of glibc malloc's path: measured under
# callgrind, 13% fewer instructions per proxied request (docs/gateway.md). Sanitizer and fuzz
# builds keep the system allocator, which the sanitizers replace.
set(_eph_allocator_default jemalloc)
if(EPH_SANITIZE OR EPH_FUZZ)
  set(_eph_allocator_default system)
endif()
set(EPH_ALLOCATOR "${_eph_allocator_default}" CACHE STRING "Allocator for ephd: jemalloc or system")
add_library(eph_allocator INTERFACE)
if(EPH_ALLOCATOR STREQUAL "jemalloc")
  find_library(EPH_JEMALLOC_LIBRARY NAMES jemalloc)
  if(NOT EPH_JEMALLOC_LIBRARY)
    message(FATAL_ERROR "jemalloc not found: run scripts/install-deps --build (Debian "
                        "libjemalloc-dev), or configure with -DEPH_ALLOCATOR=system")
  endif()
  target_link_libraries(eph_allocator INTERFACE ${EPH_JEMALLOC_LIBRARY})
elseif(NOT EPH_ALLOCATOR STREQUAL "system")
  message(FATAL_ERROR "EPH_ALLOCATOR must be jemalloc or system, not '${EPH_ALLOCATOR}'")
endif()
