#!/usr/bin/env bash
# Set up and run the test suite on a Debian machine:  bash tests/run.sh [pytest args]
#
# Installs the system packages the tests need (only if one is missing), installs
# the project with its [test] extra into the current python3, then runs pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(libportaudio2 jackd2 liblo-tools espeak-ng sox tmux)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == ii* ]] || missing+=("$pkg")
    done
else
    echo "run.sh: no dpkg-query; not checking for: ${APT_PACKAGES[*]}" >&2
fi

if ((${#missing[@]})); then
    echo "run.sh: installing missing system packages: ${missing[*]}" >&2
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "run.sh: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
    # jackd2 asks whether to enable realtime priority: answer it up front.
    echo "jackd2 jackd/tweak_rt_limits boolean false" |
        "${as_root[@]}" debconf-set-selections
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${APT_PACKAGES[@]}" </dev/null
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_ROOT_USER_ACTION="${PIP_ROOT_USER_ACTION:-ignore}"  # root in CI is fine
python3 -m pip install -q -e '.[test]'

exec python3 -m pytest -q "$@"
