// Small helpers shared by pkg/kube's tests: files in temp directories and a self-signed
// certificate-looking PEM. Test-only.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/escaping.h"

namespace eph::kube::testing {

inline void WriteFile(const std::string& path, const std::string& content,
                      bool executable = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  if (executable) ::chmod(path.c_str(), 0755);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::string B64(const std::string& s) { return absl::Base64Escape(s); }

// Not a real certificate: the kubeconfig reader only checks the PEM armour; TLS happens in the
// test-bed tests.
inline const std::string& FakeCaPem() {
  static const std::string pem =
      "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
  return pem;
}

}  // namespace eph::kube::testing
