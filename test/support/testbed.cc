#include "test/support/testbed.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace eph::testing {
namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

std::string SourceDir() {
#ifdef EPH_SOURCE_DIR
  return EnvOr("EPH_SOURCE_DIR", EPH_SOURCE_DIR);
#else
  return EnvOr("EPH_SOURCE_DIR", ".");
#endif
}

std::string BinaryDir() {
#ifdef EPH_BINARY_DIR
  return EnvOr("EPH_BINARY_DIR", EPH_BINARY_DIR);
#else
  return EnvOr("EPH_BINARY_DIR", ".");
#endif
}

std::string TestbedDir() {
#ifdef EPH_TESTBED_DIR
  return EnvOr("EPH_TESTBED_DIR", EPH_TESTBED_DIR);
#else
  return EnvOr("EPH_TESTBED_DIR", "testbed");
#endif
}

std::map<std::string, std::string> TestbedEnv(const std::string& service) {
  const std::string path = absl::StrCat(TestbedDir(), "/", service, ".env");
  std::ifstream in(path);
  std::map<std::string, std::string> out;
  if (!in) {
    ADD_FAILURE() << "test bed service '" << service << "' is not up: " << path
                  << " is missing (run it through ctest so the fixture testbed." << service
                  << ".up starts it)";
    return out;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    // Values may be shell-quoted by the scripts.
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    std::string key = line.substr(0, eq);
    if (key.rfind("export ", 0) == 0) key = key.substr(7);
    out[key] = value;
  }
  return out;
}

std::string TestbedValue(const std::string& service, const std::string& key) {
  auto env = TestbedEnv(service);
  auto it = env.find(key);
  if (it == env.end()) {
    ADD_FAILURE() << "test bed service '" << service << "' has no " << key;
    return "";
  }
  return it->second;
}

std::string MakeTempDir(const std::string& prefix) {
  const std::string base = absl::StrCat(BinaryDir(), "/test-tmp");
  std::filesystem::create_directories(base);
  std::string templ = absl::StrCat(base, "/", prefix, "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed under " << base;
  }
  return templ;
}

}  // namespace eph::testing
