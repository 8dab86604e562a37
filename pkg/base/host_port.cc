#include "pkg/base/host_port.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace eph {

absl::Status SplitHostPort(const std::string& text, std::string& host, uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", text, "\" must be host:port, e.g. 127.0.0.1:8080"));
  }
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  const long p = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port \"", port_text, "\" is not 0-65535"));
  }
  port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

}  // namespace eph
