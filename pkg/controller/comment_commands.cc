#include "pkg/controller/comment_commands.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pkg/controller/env_record.h"

namespace eph::controller {
namespace {

using state::Environment;
using state::EnvState;

// Commands read per pass; more wait for the next pass (the key is requeued by the next comment).
constexpr int kMaxCommandsPerPass = 100;

bool IsLive(const Environment& env) {
  return env.state != EnvState::kDestroyed && env.state != EnvState::kDestroying;
}

// The rules (lifecycle.h) refused the command: said in the sticky comment, not retried.
bool Refused(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kFailedPrecondition;
}

}  // namespace

CommentCommands::CommentCommands(state::Store& store, forge::Forge& forge,
                                 EnvironmentIntents& intents, const Clock& clock)
    : store_(store), forge_(forge), intents_(intents), clock_(clock) {}

void CommentCommands::Stamp(const Receipt& receipt, Environment& env) const {
  EnvRecord record = ParseEnvRecord(env.spec_json);
  record.last_comment_id = receipt.comment_id;
  record.command_note = receipt.note;
  env.spec_json = EnvRecordJson(record);
  env.updated_at = clock_.Now();
}

absl::StatusOr<CommentCommands::Outcome> CommentCommands::Handle(const Environment& env) {
  // Only comments made while this environment existed: a command written before it was created
  // was meant for another (or none).
  absl::StatusOr<std::vector<state::Delivery>> deliveries = store_.ListPullRequestDeliveries(
      env.project, env.pr_number, state::kDeliveryComment, env.created_at, kMaxCommandsPerPass);
  if (!deliveries.ok()) return deliveries.status();
  int64_t last_id = ParseEnvRecord(env.spec_json).last_comment_id;
  Outcome outcome;
  Environment row = env;             // the row as last stored
  std::optional<Receipt> unwritten;  // the newest receipt, when no intent wrote it
  bool handled = false;
  for (const state::Delivery& d : *deliveries) {
    std::optional<CommandComment> c = CommandFromDelivery(d);
    if (!c || c->comment_id <= last_id || outcome.destroying) continue;
    Receipt receipt{c->comment_id, ""};
    const std::string who = "`" + c->command.text + "` from @" + c->author;
    std::optional<Environment> written;
    if (c->command.kind != Command::Kind::kInvalid) {
      // An error here (the forge unreachable) retries the pass; this command's receipt was not
      // written, so it is handled then, once.
      absl::StatusOr<bool> may = forge_.CanWrite(env.project, c->author);
      if (!may.ok()) return may.status();
      if (!*may) {
        receipt.note = who + " was ignored: commands need write access to " + env.project + ".";
      }
    }
    if (receipt.note.empty()) {
      absl::StatusOr<std::optional<Environment>> carried = CarryOut(*c, who, row, receipt, outcome);
      if (!carried.ok()) return carried.status();
      written = std::move(*carried);
    }
    last_id = c->comment_id;
    handled = true;
    spdlog::info("environment {}: {}", env.name, receipt.note);
    if (written) {
      row = std::move(*written);
      unwritten.reset();
    } else {
      unwritten = std::move(receipt);
    }
  }
  if (!handled) return outcome;
  if (unwritten) {
    Stamp(*unwritten, row);
    absl::StatusOr<Environment> saved = store_.UpdateEnvironment(row);
    if (!saved.ok()) return saved.status();
    row = std::move(*saved);
  }
  outcome.env = std::move(row);
  return outcome;
}

absl::StatusOr<std::optional<Environment>> CommentCommands::CarryOut(const CommandComment& comment,
                                                                     const std::string& who,
                                                                     const Environment& env,
                                                                     Receipt& receipt,
                                                                     Outcome& outcome) {
  const bool live = IsLive(env);
  auto stamp = [&](Environment& e) { Stamp(receipt, e); };
  // Commands run inside the reconcile pass of the environment's pull request, which carries
  // each change out with the record returned.
  constexpr auto kThisPass = EnvironmentIntents::CarriedOutBy::kThisPass;
  absl::StatusOr<Environment> done;
  switch (comment.command.kind) {
    case Command::Kind::kInvalid:
      receipt.note = who + " was not understood: " + comment.command.error + ".";
      return std::nullopt;
    case Command::Kind::kRedeploy:
      receipt.note = who + (live ? ": redeploying." : ": a new environment will be created.");
      done = intents_.Redeploy(env.name, stamp, kThisPass);
      break;
    case Command::Kind::kExtend:
      done = intents_.Extend(env.name, comment.command.extend_by, [&](Environment& e) {
        receipt.note = who + ": now expires " + FormatRfc3339(*e.expires_at) + ".";
        Stamp(receipt, e);
      });
      break;
    case Command::Kind::kKeep:
      receipt.note = who + ": kept, no TTL.";
      done = intents_.Keep(env.name, stamp, kThisPass);
      break;
    case Command::Kind::kDown:
      if (!live) {
        receipt.note = who + ": already destroyed.";
        return std::nullopt;
      }
      receipt.note = who + ": destroying.";
      done = intents_.Destroy(env.name, "`/eph down` from @" + comment.author, [&](Environment& e) {
        // Down at this commit until a push or `/eph redeploy`.
        EnvRecord record = ParseEnvRecord(e.spec_json);
        record.block_recreate = true;
        e.spec_json = EnvRecordJson(record);
        Stamp(receipt, e);
      }, kThisPass);
      if (done.ok()) outcome.destroying = true;
      break;
  }
  if (done.ok()) return std::optional<Environment>(std::move(*done));
  if (!Refused(done.status())) return done.status();
  receipt.note = absl::StrCat(who, ": ", done.status().message(), ".");
  return std::nullopt;
}

}  // namespace eph::controller
