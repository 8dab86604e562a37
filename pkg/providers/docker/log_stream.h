// Reading container logs from the Engine API: a container created without a TTY (Eph never asks
// for one) streams stdout and stderr multiplexed in frames, each an 8-byte header
//   [stream: 1 = stdout, 2 = stderr][0][0][0][payload size: uint32 big-endian]
// followed by the payload. Frames split lines anywhere and a line may span frames, so
// LogDemuxer keeps a partial line per stream until its newline arrives.
//
// Thread-safety: a LogDemuxer belongs to one reader; the free functions are pure.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "pkg/base/clock.h"

namespace eph::providers::docker {

class LogDemuxer {
 public:
  // Receives one line without its newline (or "\r\n"); returning false stops the reader.
  using LineFn = std::function<bool(int stream, std::string_view line)>;

  // A line longer than this is delivered in pieces of this size.
  static constexpr size_t kMaxLine = size_t{64} * 1024;

  // Feeds the next bytes of the stream. False once `on_line` asked to stop or the stream is
  // corrupt (a header with a stream type other than 0-2 or nonzero padding): nothing more is
  // delivered after that.
  bool Feed(std::string_view data, const LineFn& on_line);
  // End of stream: delivers the last partial line of each stream.
  bool Finish(const LineFn& on_line);

  bool corrupt() const { return corrupt_; }

 private:
  bool Emit(int stream, std::string_view bytes, const LineFn& on_line);

  std::string header_;
  uint32_t remaining_ = 0;  // payload bytes left in the current frame
  int stream_ = 0;
  std::array<std::string, 3> partial_;  // stdin (never sent), stdout, stderr
  bool stopped_ = false;
  bool corrupt_ = false;
};

// "2026-11-27T17:30:50.123456789Z message" (timestamps=1) -> the time and "message". A line
// without a parsable timestamp is returned whole, with `at` left unchanged.
std::string_view SplitTimestamp(std::string_view line, TimePoint& at);

}  // namespace eph::providers::docker
