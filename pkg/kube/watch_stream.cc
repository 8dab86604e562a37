#include "pkg/kube/watch_stream.h"

#include <algorithm>

#include "fmt/format.h"

namespace eph::kube {

std::string_view WatchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

std::string ResourceVersionOf(const nlohmann::json& object) {
  if (!object.is_object()) return "";
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  const auto rv = meta->find("resourceVersion");
  if (rv == meta->end() || !rv->is_string()) return "";
  return rv->get<std::string>();
}

absl::Status WatchStreamParser::Feed(std::string_view bytes,
                                     const std::function<void(WatchEvent&&)>& on_event) {
  if (!error_.ok()) return error_;
  buffer_.append(bytes.data(), bytes.size());
  size_t start = 0;
  while (true) {
    const size_t nl = buffer_.find('\n', std::max(start, scanned_));
    if (nl == std::string::npos) break;
    std::string_view line(buffer_.data() + start, nl - start);
    // The limit applies to the raw line, as it does to a line still waiting for its newline,
    // so the outcome cannot depend on where the chunks were cut.
    if (line.size() > max_event_bytes_) {
      error_ = absl::InvalidArgumentError(
          fmt::format("watch stream: an event is larger than {} bytes", max_event_bytes_));
      return error_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    error_ = ParseLine(line, on_event);
    if (!error_.ok()) return error_;
    start = nl + 1;
    scanned_ = start;
  }
  buffer_.erase(0, start);
  scanned_ = buffer_.size();
  if (buffer_.size() > max_event_bytes_) {
    error_ = absl::InvalidArgumentError(fmt::format(
        "watch stream: an event is larger than {} bytes (no newline seen)", max_event_bytes_));
    buffer_.clear();
    scanned_ = 0;
  }
  return error_;
}

bool WatchStreamParser::HasPartialEvent() const {
  for (char c : buffer_) {
    if (c != ' ' && c != '\t' && c != '\r') return true;
  }
  return false;
}

absl::Status WatchStreamParser::ParseLine(std::string_view line,
                                          const std::function<void(WatchEvent&&)>& on_event) {
  if (line.find_first_not_of(" \t") == std::string_view::npos) return absl::OkStatus();
  nlohmann::json doc = nlohmann::json::parse(line.begin(), line.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("watch stream: an event is not a JSON object: {}", line.substr(0, 200)));
  }
  const auto type = doc.find("type");
  if (type == doc.end() || !type->is_string()) {
    return absl::InvalidArgumentError("watch stream: an event has no type");
  }
  const std::string& name = type->get_ref<const std::string&>();
  WatchEvent event;
  if (name == "ADDED") {
    event.type = WatchEventType::kAdded;
  } else if (name == "MODIFIED") {
    event.type = WatchEventType::kModified;
  } else if (name == "DELETED") {
    event.type = WatchEventType::kDeleted;
  } else if (name == "BOOKMARK") {
    event.type = WatchEventType::kBookmark;
  } else if (name == "ERROR") {
    event.type = WatchEventType::kError;
  } else {
    return absl::InvalidArgumentError(
        fmt::format("watch stream: unknown event type \"{}\"", name.substr(0, 50)));
  }
  const auto object = doc.find("object");
  if (object == doc.end() || !object->is_object()) {
    return absl::InvalidArgumentError(fmt::format("watch stream: a {} event has no object", name));
  }
  event.object = std::move(*object);
  on_event(std::move(event));
  return absl::OkStatus();
}

}  // namespace eph::kube
