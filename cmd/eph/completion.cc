#include "cmd/eph/completion.h"

namespace eph::cli {
namespace {

constexpr char kBash[] = R"BASH(# bash completion for eph: source <(eph completion bash)
_eph_environments() {
  eph -o json list 2>/dev/null | sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p'
}
_eph() {
  local cur prev cmd i
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
    --by) COMPREPLY=($(compgen -W "4h 24h 72h" -- "$cur")); return ;;
    --server|--repo|--pr|--component|--timeout|--interval) return ;;
  esac
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      -o|--output|--server) ((i++)) ;;
      -*) ;;
      *) cmd="${COMP_WORDS[i]}"; break ;;
    esac
  done
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "list status logs down up extend open validate completion --server -o --output --help" -- "$cur")) ;;
    list) COMPREPLY=($(compgen -W "--all" -- "$cur")) ;;
    status|down|open) COMPREPLY=($(compgen -W "$(_eph_environments)" -- "$cur")) ;;
    logs) COMPREPLY=($(compgen -W "-f --follow --component $(_eph_environments)" -- "$cur")) ;;
    extend) COMPREPLY=($(compgen -W "--by $(_eph_environments)" -- "$cur")) ;;
    up) COMPREPLY=($(compgen -W "--repo --pr --wait --timeout --interval" -- "$cur")) ;;
    validate) COMPREPLY=($(compgen -f -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
  esac
}
complete -F _eph eph
)BASH";

constexpr char kZsh[] = R"ZSH(#compdef eph
# zsh completion for eph: eph completion zsh > "${fpath[1]}/_eph"
_eph_environments() {
  local -a envs
  envs=(${(f)"$(eph -o json list 2>/dev/null | sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p')"})
  _describe 'environment' envs
}
_eph() {
  local -a commands
  commands=(
    'list:list environments'
    'status:show one environment and its history'
    'logs:print an environment'"'"'s logs'
    'down:destroy an environment'
    'up:create the environment of a pull request'
    'extend:give an environment more time to live'
    'open:print (and open) an environment'"'"'s URL'
    'validate:check an eph.yaml offline'
    'completion:print a shell completion script'
  )
  _arguments -C \
    '--server[ephd address]:url:' \
    '(-o --output)'{-o,--output}'[output format]:format:(table json)' \
    '1:command:->command' \
    '*::arg:->args'
  case $state in
    command) _describe 'command' commands ;;
    args)
      case $words[1] in
        list) _arguments '--all[include destroyed environments]' ;;
        status|down|open) _arguments '1:environment:_eph_environments' ;;
        logs) _arguments '1:environment:_eph_environments' '(-f --follow)'{-f,--follow}'[keep printing new lines]' '--component[only this component]:component:' ;;
        extend) _arguments '1:environment:_eph_environments' '--by[how much longer]:duration:(4h 24h 72h)' ;;
        up) _arguments '--repo[OWNER/REPO]:repository:' '--pr[pull request number]:number:' '--wait[wait until ready]' '--timeout[give up after]:duration:' '--interval[poll interval]:duration:' ;;
        validate) _arguments '1:file:_files' ;;
        completion) _arguments '1:shell:(bash zsh)' ;;
      esac ;;
  esac
}
_eph "$@"
)ZSH";

}  // namespace

std::string CompletionScript(const std::string& shell) {
  if (shell == "bash") return kBash;
  if (shell == "zsh") return kZsh;
  return "";
}

}  // namespace eph::cli
