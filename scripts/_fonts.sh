# Sourced by scripts/run.sh and .ci/run; not run on its own.
#
# fonts_setup: make sure the fonts the invoice PDFs draw every script with are
# installed (templates/invoices/invoice.css): DejaVu Sans for Latin, Greek and
# Cyrillic, Debian's Noto packages for the rest. fonts-noto-core has Noto Sans
# Arabic and Hebrew (and most other scripts), fonts-noto-cjk Noto Sans CJK
# (Chinese, Japanese, Korean); without them those characters print as empty boxes,
# which the PDF's render logs and the admin shows (invoices/pdf_fonts.py).
# Installed with apt-get where the machine allows it (root, Debian or Ubuntu);
# elsewhere it says what to install and goes on. `fonts_setup required` (CI) fails
# when they cannot be installed.

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

fonts_setup() {
    local required=${1:-}
    fonts_missing || return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing the PDF fonts: ${FONT_PACKAGES[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${FONT_PACKAGES[@]}" </dev/null >&2 ||
            { apt-get update -q </dev/null >&2 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                    "${FONT_PACKAGES[@]}" </dev/null >&2; }
    fi
    if fonts_missing; then
        echo "warning: the invoice PDFs lack fonts for some scripts (Japanese, Chinese," \
            "Korean, Arabic, Hebrew print as empty boxes); install them:" \
            "sudo apt-get install ${FONT_PACKAGES[*]} (or your system's Noto fonts)" >&2
        [[ $required != required ]]
        return
    fi
}
