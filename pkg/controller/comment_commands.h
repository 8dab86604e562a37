// CommentCommands: carries out a pull request's new `/eph` comment commands (commands.h parses
// them) on its environment. A command that changes the environment's life (redeploy, extend,
// keep, down) goes through EnvironmentIntents, so the API and the comments apply one set of rules
// (lifecycle.h) the same way; the comment's id and the line the sticky comment shows are written
// in the same compare-and-swap, so each command is carried out once. Commands from people without
// write access, commands not understood and commands the rules refuse are answered in the sticky
// comment only.
//
// Errors: the store's and the forge's (asking whether the author may write), for the work queue
// to retry; a command whose write did not happen is carried out by the retry.
//
// Thread-safety: Handle may run on many threads for different pull requests, never for the same
// one at once (the work queue's lease).
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/controller/commands.h"
#include "pkg/controller/intents.h"
#include "pkg/forge/forge.h"
#include "pkg/state/store.h"

namespace eph::controller {

class CommentCommands {
 public:
  // All references must outlive the object.
  CommentCommands(state::Store& store, forge::Forge& forge, EnvironmentIntents& intents,
                  const Clock& clock);

  struct Outcome {
    // The environment's row after the commands; nullopt when there was no new command.
    std::optional<state::Environment> env;
    // `/eph down` started destroying it; later commands wait for the next pass.
    bool destroying = false;
  };

  // The new commands written on `env`'s pull request while `env` existed (its live environment,
  // or else its newest destroyed one), oldest first.
  absl::StatusOr<Outcome> Handle(const state::Environment& env);

 private:
  // What a handled command leaves in the environment's record: the comment it came from, and
  // the line the sticky comment shows.
  struct Receipt {
    int64_t comment_id = 0;
    std::string note;
  };
  // Carries out one command whose author may write (`who`: the command and its author, for the
  // note). The stored row when an intent wrote it (the receipt with it), nullopt when only
  // `receipt` is left to write.
  absl::StatusOr<std::optional<state::Environment>> CarryOut(const CommandComment& comment,
                                                             const std::string& who,
                                                             const state::Environment& env,
                                                             Receipt& receipt, Outcome& outcome);
  // `receipt` written into `env`'s record, as of now.
  void Stamp(const Receipt& receipt, state::Environment& env) const;

  state::Store& store_;
  forge::Forge& forge_;
  EnvironmentIntents& intents_;
  const Clock& clock_;
};

}  // namespace eph::controller
