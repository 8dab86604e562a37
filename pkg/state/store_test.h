// The Store conformance suite (store_test.cc), shared by every backend: each backend's test
// file instantiates it with a StoreBackendParam that hands out fresh, empty databases.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/state/store.h"

namespace eph::state::testing {

// Where one test's databases come from.
class StoreBackendEnv {
 public:
  virtual ~StoreBackendEnv() = default;
  // A store URL naming a new, empty database. Each call gives another one.
  virtual std::string FreshUrl() = 0;
};

struct StoreBackendParam {
  std::string name;
  std::function<std::unique_ptr<StoreBackendEnv>()> make;
};

inline void PrintTo(const StoreBackendParam& p, std::ostream* os) { *os << p.name; }
inline std::string BackendName(const ::testing::TestParamInfo<StoreBackendParam>& info) {
  return info.param.name;
}

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define EPH_ASSERT_OK(expr)                                                  \
  do {                                                                       \
    const auto& eph_status_or_ = (expr);                                     \
    ASSERT_TRUE(::eph::state::testing::StatusOf(eph_status_or_).ok())        \
        << #expr << ": " << ::eph::state::testing::StatusOf(eph_status_or_); \
  } while (0)
#define EPH_EXPECT_OK(expr)                                                  \
  do {                                                                       \
    const auto& eph_status_or_ = (expr);                                     \
    EXPECT_TRUE(::eph::state::testing::StatusOf(eph_status_or_).ok())        \
        << #expr << ": " << ::eph::state::testing::StatusOf(eph_status_or_); \
  } while (0)
#define EPH_EXPECT_CODE(expr, expected)                                                           \
  do {                                                                                            \
    const auto& eph_status_or_ = (expr);                                                          \
    EXPECT_EQ(::eph::state::testing::StatusOf(eph_status_or_).code(), absl::StatusCode::expected) \
        << #expr << ": " << ::eph::state::testing::StatusOf(eph_status_or_);                      \
  } while (0)

// The value of a StatusOr the test cannot go on without; a failure ends the test (gtest
// reports the exception).
template <typename T>
T Must(absl::StatusOr<T> s, const char* expr) {
  if (!s.ok()) {
    ADD_FAILURE() << expr << ": " << s.status();
    throw std::runtime_error(std::string(expr) + " failed");
  }
  return *std::move(s);
}
#define MUST(expr) ::eph::state::testing::Must((expr), #expr)

class StoreTest : public ::testing::TestWithParam<StoreBackendParam> {
 protected:
  void SetUp() override {
    env_ = GetParam().make();
    url_ = env_->FreshUrl();
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Another Store on the same database: another ephd process, as far as the database knows.
  std::unique_ptr<Store> OpenAgain() { return MUST(OpenStore(url_)); }

  Environment NewEnv(const std::string& name, const std::string& project, int64_t pr) const {
    Environment e;
    e.name = name;
    e.project = project;
    e.pr_number = pr;
    e.state = EnvState::kPending;
    e.provider = "kubernetes";
    e.created_at = clock_.Now();
    e.updated_at = clock_.Now();
    return e;
  }

  FakeClock clock_;
  std::unique_ptr<StoreBackendEnv> env_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

}  // namespace eph::state::testing
