// WatchStreamParser: turns the bytes of a Kubernetes watch response (newline-delimited JSON
// events, {"type": "...", "object": {...}}) into WatchEvents, however the bytes are split into
// chunks by the network.
//
// Contract: Feed() may be called with any split of the stream, including one byte at a time, and
// produces the same events as feeding it whole. An event that is not valid JSON, has an unknown
// type or exceeds max_event_bytes is an InvalidArgument error; the stream is then unusable (the
// caller reconnects). Empty lines are ignored. This is outside input: it never asserts or throws.
//
// Thread-safety: one parser per stream, used by one thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace eph::kube {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

// "ADDED", "MODIFIED", ...: the wire names.
std::string_view WatchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  // The object; for kError a meta/v1 Status; for kBookmark only metadata.resourceVersion is
  // meaningful.
  nlohmann::json object;
};

// metadata.resourceVersion of an object, "" if it has none.
std::string ResourceVersionOf(const nlohmann::json& object);

class WatchStreamParser {
 public:
  static constexpr size_t kDefaultMaxEventBytes = 64 << 20;
  explicit WatchStreamParser(size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes`, calling `on_event` for each event completed by them, in order. After an
  // error, further calls return the same error.
  [[nodiscard]] absl::Status Feed(std::string_view bytes,
                                  const std::function<void(WatchEvent&&)>& on_event);

  // True if bytes of an unfinished event are buffered (the stream was cut mid-event).
  bool HasPartialEvent() const;

 private:
  absl::Status ParseLine(std::string_view line, const std::function<void(WatchEvent&&)>& on_event);

  const size_t max_event_bytes_;
  std::string buffer_;
  size_t scanned_ = 0;  // buffer_[0, scanned_) holds no newline
  absl::Status error_;
};

}  // namespace eph::kube
