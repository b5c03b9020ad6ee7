#!/usr/bin/env bash
# Installs what Tandem needs on Debian (12 or later) and creates the
# unprivileged user that runs the hosted browsers. Safe to run again: it only
# installs what is missing.
set -euo pipefail

packages=(chromium chromium-headless-shell libvpx-dev libturbojpeg0-dev pkg-config fonts-noto-cjk)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Chromium's sandbox must stay on, and it refuses to run as root: Tandem runs
# it as this user when Tandem itself runs as root.
if [ "$(id -u)" -eq 0 ] && ! id tandem-browser >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin tandem-browser
	echo "setup: created user tandem-browser"
fi
