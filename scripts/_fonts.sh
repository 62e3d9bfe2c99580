# Sourced by scripts/run.sh and .ci/run; not run on its own.
#
# fonts_setup: make sure the fonts the invoice PDFs draw every script with are
# installed (templates/invoices/invoice.css): DejaVu Sans for Latin, Greek and
# Cyrillic, Debian's Noto packages for the rest. fonts-noto-core has Noto Sans
# Arabic and Hebrew (and most other scripts), fonts-noto-cjk Noto Sans CJK
# (Chinese, Japanese, Korean); without them those characters print as empty boxes,
# which the PDF's render logs and the admin shows (invoices/pdf_fonts.py).
# Installed with apt-get where the machine allows it (root, Debian or Ubuntu);
# elsewhere, or when another apt-get or dpkg holds the package lock (a fresh
# machine's unattended upgrades), it says so and what to install, and goes on.
# `fonts_setup required` (CI) fails when they cannot be installed.

FONT_PACKAGES=(fonts-dejavu-core fonts-noto-core fonts-noto-cjk)
# One family of each package, as fontconfig names it.
FONT_FAMILIES=("DejaVu Sans" "Noto Sans Arabic" "Noto Sans CJK JP")

fonts_missing() {
    local family
    command -v fc-list >/dev/null 2>&1 || return 0
    for family in "${FONT_FAMILIES[@]}"; do
        fc-list "$family" family | grep -q . || return 0
    done
    return 1
}

# apt-get with these arguments, its output on stderr and kept in $fonts_log
# (fonts_setup's); its exit status.
_fonts_apt() {
    DEBIAN_FRONTEND=noninteractive apt-get "$@" </dev/null 2>&1 | tee -a -- "$fonts_log" >&2
    return "${PIPESTATUS[0]}"
}

# apt-get's line saying another process holds the lock, if $fonts_log has one.
_fonts_lock_held() {
    grep -m 1 -i -E "could not get lock|unable to acquire the dpkg|unable to lock" -- "$fonts_log"
}

fonts_setup() {
    local required=${1:-} fonts_log held=""
    fonts_missing || return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing the PDF fonts: ${FONT_PACKAGES[*]}" >&2
        fonts_log=$(mktemp "${TMPDIR:-/tmp}/fonts-apt.XXXXXX")
        local install=(install -y -q --no-install-recommends "${FONT_PACKAGES[@]}")
        if ! _fonts_apt "${install[@]}"; then
            # Stale package lists (a fresh image): once more after an update, unless the
            # lock is held (the update would find it held too).
            held=$(_fonts_lock_held) ||
                { _fonts_apt update -q && _fonts_apt "${install[@]}"; } ||
                held=$(_fonts_lock_held) || true
        fi
        rm -f -- "$fonts_log"
        if [[ -n $held ]] && fonts_missing; then
            if [[ $required == required ]]; then
                echo "error: another package manager holds the lock; the fonts are not" \
                    "installed: $held" >&2
                return 1
            fi
            echo "warning: another package manager holds the lock; going on without the" \
                "fonts: $held (run again once it is done, or: sudo apt-get install" \
                "${FONT_PACKAGES[*]})" >&2
            return 0
        fi
    fi
    if fonts_missing; then
        echo "warning: the invoice PDFs lack fonts for some scripts (Japanese, Chinese," \
            "Korean, Arabic, Hebrew print as empty boxes); install them:" \
            "sudo apt-get install ${FONT_PACKAGES[*]} (or your system's Noto fonts)" >&2
        [[ $required != required ]]
        return
    fi
}
