# eph_add_test(NAME SOURCES ... [DEPS ...] [LABELS ...] [FIXTURES ...])
#
# Builds one GoogleTest binary and registers each of its tests with CTest. LABELS defaults to
# "unit". FIXTURES names test-bed services (postgres, kubernetes, docker, ...): CTest then starts
# them first, so `ctest -L postgres` brings up exactly what those tests need. Every test sees
# EPH_TESTBED_DIR (where the test bed writes <service>.env) and EPH_SOURCE_DIR.
include(GoogleTest)

set(EPH_TESTBED_DIR ${CMAKE_BINARY_DIR}/testbed)

function(eph_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;FIXTURES" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE eph_build_flags eph_testing ${ARG_DEPS} GTest::gmock
                        GTest::gtest_main)
  # Where things are is compiled in, so a test binary also runs by hand outside CTest.
  target_compile_definitions(${name} PRIVATE EPH_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    EPH_BINARY_DIR="${CMAKE_BINARY_DIR}" EPH_TESTBED_DIR="${EPH_TESTBED_DIR}")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 30
                       TEST_LIST ${name}_TESTS)
  # Properties are set on the discovered tests afterwards, because list-valued properties do
  # not survive gtest_discover_tests' PROPERTIES argument.
  set(_include ${CMAKE_CURRENT_BINARY_DIR}/${name}_props.cmake)
  file(WRITE ${_include}
    "foreach(t IN LISTS ${name}_TESTS)\n"
    "  set_tests_properties(\"\${t}\" PROPERTIES LABELS \"${ARG_LABELS}\" FIXTURES_REQUIRED \"${ARG_FIXTURES}\")\n"
    "endforeach()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${_include})
endfunction()

# eph_add_script_test(NAME COMMAND ... [LABELS ...] [FIXTURES ...]) registers a script or binary
# run as one test, with the same environment as eph_add_test.
function(eph_add_script_test name)
  cmake_parse_arguments(ARG "" "" "COMMAND;LABELS;FIXTURES;TIMEOUT" ${ARGN})
  add_test(NAME ${name} COMMAND ${ARG_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" ENVIRONMENT
    "EPH_TESTBED_DIR=${EPH_TESTBED_DIR};EPH_SOURCE_DIR=${PROJECT_SOURCE_DIR};EPH_BINARY_DIR=${CMAKE_BINARY_DIR}")
  if(ARG_FIXTURES)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${ARG_FIXTURES}")
  endif()
  if(ARG_TIMEOUT)
    set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  endif()
endfunction()

# eph_add_testbed_service(SERVICE) registers test/bed/<service>/{up,down} as a CTest fixture.
function(eph_add_testbed_service service)
  set(_dir ${PROJECT_SOURCE_DIR}/test/bed/${service})
  add_test(NAME testbed.${service}.up COMMAND ${_dir}/up)
  add_test(NAME testbed.${service}.down COMMAND ${_dir}/down)
  set_tests_properties(testbed.${service}.up PROPERTIES FIXTURES_SETUP ${service}
                       LABELS ${service} ENVIRONMENT "EPH_TESTBED_DIR=${EPH_TESTBED_DIR}"
                       TIMEOUT 3000)
  set_tests_properties(testbed.${service}.down PROPERTIES FIXTURES_CLEANUP ${service}
                       LABELS ${service} ENVIRONMENT "EPH_TESTBED_DIR=${EPH_TESTBED_DIR}")
endfunction()
