# Sourced by scripts/compose_check.sh and bench/compose_boot.sh; not run on its own.
#
# podman_setup: podman, runc, debootstrap (apt-get, as root) and podman-compose (a venv
# in var/compose-tools) when missing; a containers.conf with runc and limits below the
# machine's (../CONTAINERS.md: Debian's crun refuses these machines' mixed cgroups, and
# root here cannot raise its limits) unless CONTAINERS_CONF names one; and, where no
# registry answers, the base images compose.yaml and the Containerfile name, built from
# Debian's packages: debian:bookworm-slim by debootstrap, postgres:15-bookworm and
# redis:7-bookworm from the stand-ins in .ci/images/ (docs/running.md, "Offline").
# Sets `compose_tool` to the podman-compose to run.

podman_setup() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
        if [[ $(id -u) != 0 ]]; then
            echo "podman, runc and debootstrap are needed (apt-get install podman runc debootstrap)" >&2
            return 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap </dev/null ||
            { apt-get update -q </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap </dev/null; }
    fi
    local tools=$root/var/compose-tools
    if [[ ! -x $tools/bin/podman-compose ]]; then
        python3 -m venv "$tools"
        "$tools/bin/pip" install -q "podman-compose==1.6.0"
    fi
    compose_tool=$tools/bin/podman-compose
    if [[ -z ${CONTAINERS_CONF:-} ]]; then
        export CONTAINERS_CONF=$root/var/containers.conf
        cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
    fi
    # The stand-in is made as the official slim image is: no package cache, no
    # documentation, manual pages or translations, neither in it nor in what is
    # installed on it later (dpkg's path-exclude, apt's clean-up after each run), so
    # that an image built on it weighs what it weighs on the official one. Its label
    # says which way it was made: an older stand-in is made again.
    local standin=2
    if [[ $(podman image inspect --format '{{index .Labels "org.usage-billing.standin"}}' \
        docker.io/library/debian:bookworm-slim 2>/dev/null) != "$standin" ]]; then
        echo "debian:bookworm-slim from Debian's packages (debootstrap; no registry here)"
        local rootfs
        rootfs=$(mktemp -d /tmp/bookworm-rootfs.XXXXXX)
        debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
DPKG
        cat >"$rootfs/etc/apt/apt.conf.d/slim-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
            "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
            "$rootfs"/usr/share/locale/*
        find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
        tar -C "$rootfs" -c . | podman import --change "LABEL org.usage-billing.standin=$standin" \
            - docker.io/library/debian:bookworm-slim >/dev/null
        rm -rf "$rootfs"
    fi
    # Built every time (cached layers make it seconds), so a change to a stand-in applies.
    local name
    for name in postgres:15-bookworm redis:7-bookworm; do
        podman build -q --format docker -f "$root/.ci/images/${name%%:*}.Containerfile" \
            -t "docker.io/library/$name" "$root/.ci/images" >/dev/null
    done
}
