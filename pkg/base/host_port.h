// "host:port" as ephd's flags and the providers' addresses write it.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace eph {

// Splits "host:port" (the host may be "[v6]"; brackets are removed). InvalidArgument, naming
// the text, when there is no port or it is not 0-65535.
absl::Status SplitHostPort(const std::string& text, std::string& host, uint16_t& port);

}  // namespace eph
