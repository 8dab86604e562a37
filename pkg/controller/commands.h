// `/eph` commands in pull-request comments: parsing (pure) and what each one means.
//
//   /eph redeploy        apply the head commit again (also after a failure or `/eph down`)
//   /eph extend 24h      move the TTL later by the duration (from now if already past)
//   /eph down            destroy the environment; it stays down until a push or `/eph redeploy`
//   /eph keep            remove the TTL
//
// A command is the first line of a comment that starts with "/eph" (leading spaces allowed);
// the rest of the comment is free text. The reconciler honours commands only from users with
// write access to the repository, once each (by comment id), and reports the outcome in the
// environment's sticky comment.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pkg/base/clock.h"
#include "pkg/state/store.h"

namespace eph::controller {

struct Command {
  enum class Kind { kRedeploy, kExtend, kDown, kKeep, kInvalid };
  Kind kind = Kind::kInvalid;
  Duration extend_by{};  // kExtend
  std::string text;      // the command line as written, trimmed, for the report
  std::string error;     // kInvalid: what is wrong, for the report
};

// nullopt when the comment holds no `/eph` line.
std::optional<Command> ParseCommand(std::string_view comment_body);

// A comment carrying a command, from a delivery its forge decoded at intake (kind "comment").
struct CommandComment {
  int64_t comment_id = 0;
  std::string author;
  Command command;
};

// nullopt for deliveries that are not a person's new comment (the forge's decoder leaves edits,
// deletions and bots' comments out) or whose comment holds no `/eph` line.
std::optional<CommandComment> CommandFromDelivery(const state::Delivery& delivery);

}  // namespace eph::controller
