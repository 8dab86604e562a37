// Access for tests to the services of the test bed (test/bed/<service>/up writes
// $EPH_TESTBED_DIR/<service>.env). A test that needs a service and cannot find it fails: it never
// skips, so a CI run without the service is red, not silently green.
#pragma once

#include <map>
#include <string>

namespace eph::testing {

// The KEY=VALUE pairs of <service>.env. Records a gtest failure (and returns an empty map) when
// the file is missing: the fixture did not run or failed.
std::map<std::string, std::string> TestbedEnv(const std::string& service);

// One value of TestbedEnv(service); records a failure when missing.
std::string TestbedValue(const std::string& service, const std::string& key);

// A fresh empty directory under the build tree's test temp area, removed by nobody (CTest runs
// leave it for inspection; the build dir is disposable).
std::string MakeTempDir(const std::string& prefix);

std::string SourceDir();
// Where the test bed keeps its state (what the bed scripts take as EPH_TESTBED_DIR).
std::string TestbedDir();
std::string BinaryDir();

}  // namespace eph::testing
