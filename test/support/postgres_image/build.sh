#!/usr/bin/env bash
# STAND-IN, NOT THE OFFICIAL IMAGE. Builds a local substitute for Docker Hub's `postgres:15`
# (no registry can be pulled from here), FROM scratch, out of the host's Debian PostgreSQL 15
# (package postgresql-15) and the shared libraries it links. It follows the documented contract
# of the official image's main environment variables, not its full feature set:
#   POSTGRES_PASSWORD  required when the data directory is initialised
#   POSTGRES_USER      superuser name (default postgres)
#   POSTGRES_DB        database created at initialisation (default: POSTGRES_USER)
#   PGDATA             data directory (default /var/lib/postgresql/data, a VOLUME)
# Not supported (the entrypoint warns if they are set): POSTGRES_INITDB_ARGS,
# POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD, the *_FILE variants and
# /docker-entrypoint-initdb.d. The server always runs as uid 999 (USER 999; running it as root
# is refused by postgres itself). JIT is not available (llvmjit and LLVM are left out).
#
#   DOCKER_HOST=unix:///path/docker.sock test/support/postgres_image/build.sh [TAG]
#
# TAG defaults to postgres:15. The image carries a label with a hash of its inputs (this script
# and `postgres --version`); when TAG already has that label the build is skipped. Progress goes
# to stderr; the last line on stdout is TAG.
set -euo pipefail

TAG=${1:-postgres:15}
PG_MAJOR=15
PG_LIB=/usr/lib/postgresql/$PG_MAJOR
PG_SHARE=/usr/share/postgresql/$PG_MAJOR
INPUTS_LABEL=eph.dev/stand-in-inputs
SELF=$(readlink -f "$0")

log() { printf '[postgres-image] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

[[ -n "${DOCKER_HOST:-}" ]] || die "DOCKER_HOST is not set (e.g. unix:///path/docker.sock)"
export DOCKER_HOST
for tool in docker ldd tar sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done
for bin in postgres initdb pg_isready pg_ctl; do
  [[ -x "$PG_LIB/bin/$bin" ]] ||
    die "$PG_LIB/bin/$bin not found (install Debian's postgresql-$PG_MAJOR)"
done
[[ -d "$PG_SHARE" ]] || die "$PG_SHARE not found (install Debian's postgresql-$PG_MAJOR)"
for f in /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Etc/UTC; do
  [[ -f "$f" ]] || die "$f not found (install tzdata)"
done
[[ -x /usr/bin/locale && -d /usr/lib/locale/C.utf8 ]] ||
  die "/usr/bin/locale or /usr/lib/locale/C.utf8 not found (Debian's libc-bin)"

pg_version=$("$PG_LIB/bin/postgres" --version) || die "'$PG_LIB/bin/postgres --version' failed"
inputs_hash=$({
  cat "$SELF"
  printf '%s\n' "$pg_version"
} | sha256sum | cut -d' ' -f1)

current=$(docker image inspect --format "{{ index .Config.Labels \"$INPUTS_LABEL\" }}" "$TAG" \
  2>/dev/null || true)
old_id=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
if [[ "$current" == "$inputs_hash" ]]; then
  log "$TAG is up to date ($pg_version; inputs ${inputs_hash:0:12}), build skipped"
  printf '%s\n' "$TAG"
  exit 0
fi

started_at=$SECONDS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/eph-postgres-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs
log "assembling the root filesystem of $TAG ($pg_version) in $tmp"

mkdir -p "$root"/{bin,etc,tmp,usr/local/bin,usr/share/zoneinfo/Etc} \
  "$root"/var/lib/postgresql/data "$root"/var/run/postgresql
chmod 1777 "$root/tmp"
chmod 0700 "$root/var/lib/postgresql/data"
# Like the official image: any uid may create its socket here (the sticky bit protects others').
chmod 3777 "$root/var/run/postgresql"

# PostgreSQL in Debian's layout: postgres finds its share and lib directories relative to its
# own binary. Left out: LLVM JIT (llvmjit.so would pull in libLLVM, ~100 MB, and bitcode/ is
# only for it), PGXS (extension build files) and man pages.
tar -C / -cf - \
  --exclude="${PG_LIB#/}/lib/llvmjit.so" --exclude="${PG_LIB#/}/lib/llvmjit_types.bc" \
  --exclude="${PG_LIB#/}/lib/bitcode" --exclude="${PG_LIB#/}/lib/pgxs" \
  --exclude="${PG_SHARE#/}/man" \
  "${PG_LIB#/}/bin" "${PG_LIB#/}/lib" "${PG_SHARE#/}" | tar -C "$root" -xf -

# /bin/sh is Debian's dash: the entrypoint runs on it and initdb's popen() needs it.
cp /bin/dash "$root/bin/dash"
ln -s dash "$root/bin/sh"
# initdb imports the system's locales as collations by running `locale -a` through /bin/sh;
# without the program it warns "no usable system locales were found". glibc's own C.utf8 comes
# with it (400 kB), which also gives the server a UTF-8 locale.
mkdir -p "$root/usr/bin" "$root/usr/lib/locale"
cp /usr/bin/locale "$root/usr/bin/locale"
cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/C.utf8"

# Every shared library of every binary and module, with the dynamic loader, at the path the
# host's loader resolved it to (symlinks followed, so each soname is one regular file).
mapfile -t elves < <(find "$root$PG_LIB" "$root/bin/dash" "$root/usr/bin/locale" -type f \
  \( -perm -u+x -o -name '*.so' \))
declare -A libs=()
for elf in "${elves[@]}"; do
  host_path=${elf#"$root"}
  out=$(ldd "$host_path" 2>&1) || die "ldd $host_path failed: $out"
  if grep -q 'not found' <<<"$out"; then
    die "ldd $host_path: missing libraries: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
  fi
  while read -r lib; do
    libs[$lib]=1
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
done
((${#libs[@]} > 0)) || die "ldd found no libraries (is $PG_LIB/bin/postgres dynamically linked?)"
for lib in "${!libs[@]}"; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
log "${#libs[@]} shared libraries (with the loader) from ldd"

cp -L /usr/share/zoneinfo/Etc/UTC "$root/usr/share/zoneinfo/Etc/UTC"
ln -s Etc/UTC "$root/usr/share/zoneinfo/UTC"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
postgres:x:999:
EOF
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF

# The entrypoint. It runs on dash with no other programs around: POSIX sh and builtins only.
cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint of a STAND-IN for the official postgres:15 image, built FROM scratch by Eph's
# test/support/postgres_image/build.sh. POSIX sh on dash, builtins only (there is no coreutils).
# Honours POSTGRES_PASSWORD (required to initialise), POSTGRES_USER (default postgres),
# POSTGRES_DB (default POSTGRES_USER) and PGDATA, like the official image.
set -eu

err() { printf 'postgres-stand-in: %s\n' "$*" >&2; }

# `docker run IMAGE -c name=value` means postgres with those options, as in the official image;
# any other command runs as it is.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi
shift

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

# SQL identifier quoting: "name" with every " doubled.
quote_ident() {
  rest=$1
  quoted=
  while :; do
    case $rest in
      *'"'*)
        quoted=$quoted${rest%%'"'*}'""'
        rest=${rest#*'"'}
        ;;
      *)
        quoted=$quoted$rest
        break
        ;;
    esac
  done
  printf '"%s"' "$quoted"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    err "Error: Database is uninitialized and superuser password is not specified."
    err "       You must specify POSTGRES_PASSWORD to a non-empty value for the"
    err "       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\"."
    exit 1
  fi
  for name in POSTGRES_INITDB_ARGS POSTGRES_INITDB_WALDIR POSTGRES_HOST_AUTH_METHOD \
    POSTGRES_PASSWORD_FILE POSTGRES_USER_FILE POSTGRES_DB_FILE; do
    eval "value=\${$name:-}"
    if [ -n "$value" ]; then
      err "warning: $name is not supported by this stand-in and is ignored"
    fi
  done
  if [ -d /docker-entrypoint-initdb.d ]; then
    err "warning: /docker-entrypoint-initdb.d is not supported by this stand-in and is ignored"
  fi

  echo "initializing $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
  # The password reaches initdb on its stdin (a pipe), so it never lands in a file.
  if ! initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile=/dev/stdin \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C <<EOF
$POSTGRES_PASSWORD
EOF
  then
    err "initdb failed"
    exit 1
  fi
  printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

  if [ "$POSTGRES_DB" != postgres ]; then
    # A single-user backend exits 0 even when a statement fails: look for the error instead.
    status=0
    out=$(postgres --single -D "$PGDATA" postgres 2>&1 <<EOF
CREATE DATABASE $(quote_ident "$POSTGRES_DB");
EOF
    ) || status=$?
    case $status:$out in
      0:*ERROR:* | 0:*FATAL:* | 0:*PANIC:* | [1-9]*)
        printf '%s\n' "$out" >&2
        err "could not create database $POSTGRES_DB"
        exit 1
        ;;
    esac
  fi
  echo "PostgreSQL init process complete; ready for start up."
fi

exec postgres -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
ENTRYPOINT
chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh"

# One layer from one tarball: ADD keeps the archive's owners and modes, so the directories
# postgres writes to can belong to 999 without running anything at build time.
owned=(var/lib/postgresql var/run/postgresql)
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$tmp/rootfs.tar" \
  "${owned[@]/#/--exclude=./}" .
tar -C "$root" --numeric-owner --owner=999 --group=999 -rf "$tmp/rootfs.tar" "${owned[@]/#/./}"

description="Stand-in for the official postgres:15 image, built FROM scratch from Debian's \
$pg_version by Eph's test/support/postgres_image/build.sh; not the official image."
cat >"$tmp/Dockerfile" <<EOF
# Stand-in for the official postgres:15 image; see test/support/postgres_image/build.sh.
FROM scratch
ADD rootfs.tar /
ENV PATH=$PG_LIB/bin:/usr/local/bin:/usr/bin:/bin \\
    PG_MAJOR=$PG_MAJOR \\
    PGDATA=/var/lib/postgresql/data \\
    TZ=UTC
LABEL org.opencontainers.image.title="postgres:15 stand-in" \\
      org.opencontainers.image.description="$description" \\
      org.opencontainers.image.version="$PG_MAJOR" \\
      $INPUTS_LABEL="$inputs_hash"
VOLUME /var/lib/postgresql/data
USER 999
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
EOF

log "building $TAG ($(du -sh "$tmp/rootfs.tar" | cut -f1) root filesystem)"
# The legacy builder needs no BuildKit and, FROM scratch, pulls nothing.
if ! build_out=$(DOCKER_BUILDKIT=0 docker build --tag "$TAG" "$tmp" 2>&1); then
  printf '%s\n' "$build_out" >&2
  die "docker build failed"
fi
log "built $TAG in $((SECONDS - started_at))s"
# The image TAG named before, now untagged, would only take space (with the vfs storage driver
# a full copy); it stays if a container still uses it.
if [[ -n "$old_id" && "$old_id" != "$(docker image inspect --format '{{.Id}}' "$TAG")" ]]; then
  docker image rm "$old_id" >/dev/null 2>&1 ||
    log "kept the previous image $old_id (in use or tagged otherwise)"
fi
printf '%s\n' "$TAG"
