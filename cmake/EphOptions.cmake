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
endif()
