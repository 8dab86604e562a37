// Clock: the one source of time for Eph. Production code takes a Clock& so that tests drive
// TTLs, idle timeouts and backoff with a FakeClock instead of sleeping.
//
// Thread-safety: SystemClock and FakeClock are safe to call from any thread.
#pragma once

#include <chrono>
#include <mutex>

namespace eph {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::system_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  // The process-wide instance, for binaries' main().
  static SystemClock& Instance();
};

// A clock that only moves when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(start) {}
  FakeClock();  // 2026-01-01T00:00:00Z: a fixed, readable start for tests.

  TimePoint Now() const override;
  void Advance(Duration by);
  void Set(TimePoint to);

 private:
  mutable std::mutex mu_;
  TimePoint now_;
};

// Milliseconds since the Unix epoch: the unit every store column and API timestamp uses.
int64_t ToUnixMillis(TimePoint t);
TimePoint FromUnixMillis(int64_t ms);
// RFC 3339 in UTC with millisecond precision, e.g. 2026-01-01T00:00:00.000Z.
std::string FormatRfc3339(TimePoint t);

}  // namespace eph
