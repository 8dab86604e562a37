#include "pkg/providers/docker/log_stream.h"

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace eph::providers::docker {

bool LogDemuxer::Feed(std::string_view data, const LineFn& on_line) {
  while (!data.empty() && !stopped_) {
    if (remaining_ == 0) {
      const size_t need = 8 - header_.size();
      const size_t take = std::min(need, data.size());
      header_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (header_.size() < 8) break;
      const auto b = [this](size_t i) { return static_cast<unsigned char>(header_[i]); };
      if (b(0) > 2 || b(1) != 0 || b(2) != 0 || b(3) != 0) {
        corrupt_ = true;
        stopped_ = true;
        break;
      }
      stream_ = b(0);
      remaining_ =
          (uint32_t{b(4)} << 24) | (uint32_t{b(5)} << 16) | (uint32_t{b(6)} << 8) | uint32_t{b(7)};
      header_.clear();
      continue;
    }
    const size_t take = std::min<size_t>(remaining_, data.size());
    remaining_ -= static_cast<uint32_t>(take);
    if (!Emit(stream_, data.substr(0, take), on_line)) stopped_ = true;
    data.remove_prefix(take);
  }
  return !stopped_;
}

bool LogDemuxer::Emit(int stream, std::string_view bytes, const LineFn& on_line) {
  std::string& partial = partial_[static_cast<size_t>(stream)];
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, nl);
    partial.append(piece);
    while (partial.size() > kMaxLine) {
      const std::string_view whole = partial;
      if (!on_line(stream, whole.substr(0, kMaxLine))) return false;
      partial.erase(0, kMaxLine);
    }
    if (nl == std::string_view::npos) break;
    std::string_view line = partial;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!on_line(stream, line)) return false;
    partial.clear();
    bytes.remove_prefix(nl + 1);
  }
  return true;
}

bool LogDemuxer::Finish(const LineFn& on_line) {
  if (stopped_) return false;
  for (int stream = 1; stream <= 2; ++stream) {
    std::string& partial = partial_[static_cast<size_t>(stream)];
    if (partial.empty()) continue;
    if (!on_line(stream, partial)) {
      stopped_ = true;
      return false;
    }
    partial.clear();
  }
  return true;
}

std::string_view SplitTimestamp(std::string_view line, TimePoint& at) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || space < 20) return line;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, absl::string_view(line.data(), space), &t, &err)) {
    return line;
  }
  at = absl::ToChronoTime(t);
  return line.substr(space + 1);
}

}  // namespace eph::providers::docker
