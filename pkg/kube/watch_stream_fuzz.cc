// libFuzzer target for the watch stream parser: any bytes in, never a crash, and the same events
// (or the same error) whichever way the bytes are split into chunks. Built as a real fuzzer with
// -DEPH_FUZZ=ON (clang); in every build its seed corpus (pkg/kube/testdata/watch-fuzz-corpus)
// runs as an ordinary test through a driver main.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pkg/kube/watch_stream.h"

namespace {

struct Outcome {
  std::vector<std::string> events;  // type + object, serialised
  bool failed = false;
};

Outcome Run(std::string_view input, size_t chunk) {
  eph::kube::WatchStreamParser parser(/*max_event_bytes=*/1 << 16);
  Outcome out;
  auto on_event = [&](eph::kube::WatchEvent&& e) {
    out.events.push_back(std::string(eph::kube::WatchEventTypeName(e.type)) + e.object.dump());
  };
  for (size_t i = 0; i < input.size() && !out.failed; i += chunk) {
    out.failed = !parser.Feed(input.substr(i, chunk), on_event).ok();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Outcome whole = Run(input, size == 0 ? 1 : size);
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{64}}) {
    const Outcome split = Run(input, chunk);
    // Events before a failure may differ in count only if the failure point differs, which it
    // cannot: the parser sees the same lines in the same order.
    if (split.failed != whole.failed || split.events != whole.events) std::abort();
  }
  return 0;
}
