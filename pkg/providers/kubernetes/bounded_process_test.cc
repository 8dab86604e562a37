#include "pkg/providers/kubernetes/bounded_process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "test/support/testbed.h"

namespace eph::providers::kubernetes {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The tests use /bin/sh as the *program under test* (a stand-in for kustomize); the runner itself
// never involves a shell.
TEST(RunBoundedProcessTest, CapturesStdoutAndStderr) {
  absl::StatusOr<BoundedProcessResult> r =
      RunBoundedProcess({.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->succeeded());
}

TEST(RunBoundedProcessTest, ArgumentsReachTheProgramVerbatim) {
  const std::string dir = eph::testing::MakeTempDir("bounded-argv");
  const std::string marker = dir + "/touched";
  absl::StatusOr<BoundedProcessResult> r =
      RunBoundedProcess({.argv = {"/bin/echo", "$(touch " + marker + ")", "a;b", "*"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "$(touch " + marker + ") a;b *\n");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(RunBoundedProcessTest, KillsAProgramThatWritesTooMuch) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<BoundedProcessResult> r =
      RunBoundedProcess({.argv = {"/usr/bin/yes", "a line of manifest output"},
                         .timeout = 30s,
                         .max_output_bytes = 1 << 20});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->output_exceeded);
  EXPECT_EQ(r->out.size(), 1u << 20);
  EXPECT_FALSE(r->succeeded());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);  // killed, not run to the timeout
}

TEST(RunBoundedProcessTest, KillsAProgramThatTakesTooLongWithItsChildren) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<BoundedProcessResult> r =
      RunBoundedProcess({.argv = {"/bin/sh", "-c", "sleep 30 & sleep 30"}, .timeout = 300ms});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->succeeded());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunBoundedProcessTest, KeepsTheTailOfStderr) {
  absl::StatusOr<BoundedProcessResult> r =
      RunBoundedProcess({.argv = {"/bin/sh", "-c",
                                  "i=0; while [ $i -lt 2000 ]; do echo noise $i >&2; i=$((i+1)); "
                                  "done; echo the real error >&2; exit 1"},
                         .max_error_bytes = 256});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->err.size(), 256u);
  EXPECT_THAT(r->err, HasSubstr("the real error"));
}

TEST(RunBoundedProcessTest, RunsInTheWorkingDirectory) {
  const std::string dir = eph::testing::MakeTempDir("bounded-cwd");
  absl::StatusOr<BoundedProcessResult> r =
      RunBoundedProcess({.argv = {"/bin/pwd"}, .working_dir = dir});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, std::filesystem::canonical(dir).string() + "\n");
}

TEST(RunBoundedProcessTest, AMissingProgramIsNotFound) {
  absl::StatusOr<BoundedProcessResult> r = RunBoundedProcess({.argv = {"/nonexistent/kustomize"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace eph::providers::kubernetes
