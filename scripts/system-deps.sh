#!/usr/bin/env bash
# Debian packages the tests drive for real: Chromium (browser tests through Playwright,
# never a downloaded browser), PostgreSQL (a server started by the test setup), and
# independent checkers for what we write.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# ExifTool and Info-ZIP check exported files independently of our own readers.
command -v exiftool >/dev/null || need+=(libimage-exiftool-perl)
command -v unzip >/dev/null || need+=(unzip)
# OpenSSL makes the certificate of the SMTP-over-TLS tests (tests/test_mail.py).
command -v openssl >/dev/null || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "system-deps: please install as root: apt-get install ${need[*]}" >&2; exit 1
  fi
else SUDO=""; fi
echo "system-deps: installing ${need[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
