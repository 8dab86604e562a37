// eph: the command-line client of ephd. Data commands print tables, or JSON with -o json.
// Exit status: 0 ok, 1 failure, 2 usage, 3 ephd unreachable, 4 token missing or refused,
// 5 no such environment, 6 invalid eph.yaml. Errors are one line on stderr.
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cmd/eph/commands.h"

int main(int argc, char** argv) {
  return eph::cli::Run(argc, argv);
}
