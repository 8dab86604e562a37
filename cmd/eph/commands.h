// The eph commands, separate from main() so tests can call Run() in-process too.
#pragma once

namespace eph::cli {

enum ExitCode {
  kOk = 0,
  kFailure = 1,
  kUsage = 2,
  kUnreachable = 3,
  kAuth = 4,
  kNotFound = 5,
  kInvalidConfig = 6,
};

int Run(int argc, char** argv);

}  // namespace eph::cli
