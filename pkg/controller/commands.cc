#include "pkg/controller/commands.h"

#include <chrono>

#include "absl/time/time.h"
#include "pkg/config/duration.h"

namespace eph::controller {
namespace {

constexpr char kHelp[] = "commands are /eph redeploy, /eph extend DURATION, /eph down, /eph keep";
// A year is a generous preview; longer is a typo (`/eph keep` is for no TTL at all).
constexpr auto kMaxExtension = std::chrono::hours(24 * 366);

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

Command Invalid(std::string text, std::string error) {
  Command c;
  c.kind = Command::Kind::kInvalid;
  c.text = std::move(text);
  c.error = std::move(error);
  return c;
}

}  // namespace

std::optional<Command> ParseCommand(std::string_view comment_body) {
  size_t start = 0;
  while (start <= comment_body.size()) {
    size_t end = comment_body.find('\n', start);
    if (end == std::string_view::npos) end = comment_body.size();
    const std::string_view line = Trim(comment_body.substr(start, end - start));
    start = end + 1;
    const std::vector<std::string_view> words = Words(line);
    if (words.empty() || words[0] != "/eph") continue;
    const std::string text(line.substr(0, std::min<size_t>(line.size(), 200)));
    if (words.size() < 2) return Invalid(text, std::string("no command given; ") + kHelp);
    const std::string_view verb = words[1];
    const size_t args = words.size() - 2;
    Command c;
    c.text = text;
    if (verb == "redeploy" || verb == "down" || verb == "keep") {
      if (args != 0) return Invalid(text, std::string(verb) + " takes no arguments");
      c.kind = verb == "redeploy" ? Command::Kind::kRedeploy
               : verb == "down"   ? Command::Kind::kDown
                                  : Command::Kind::kKeep;
      return c;
    }
    if (verb == "extend") {
      if (args != 1) return Invalid(text, "extend takes one duration, e.g. /eph extend 24h");
      absl::StatusOr<absl::Duration> by = config::ParseDuration(std::string(words[2]));
      if (!by.ok()) return Invalid(text, std::string(by.status().message()));
      if (*by <= absl::ZeroDuration()) return Invalid(text, "the duration must be positive");
      if (*by > absl::FromChrono(kMaxExtension)) {
        return Invalid(text, "extensions are at most 366 days; /eph keep removes the TTL");
      }
      c.kind = Command::Kind::kExtend;
      c.extend_by = std::chrono::duration_cast<Duration>(absl::ToChronoNanoseconds(*by));
      return c;
    }
    return Invalid(text, "unknown command \"" + std::string(verb) + "\"; " + kHelp);
  }
  return std::nullopt;
}

std::optional<CommandComment> CommandFromDelivery(const state::Delivery& delivery) {
  if (delivery.kind != state::kDeliveryComment || delivery.author.empty()) return std::nullopt;
  std::optional<Command> command = ParseCommand(delivery.text);
  if (!command) return std::nullopt;
  CommandComment out;
  out.comment_id = delivery.comment_id;
  out.author = delivery.author;
  out.command = std::move(*command);
  return out;
}

}  // namespace eph::controller
