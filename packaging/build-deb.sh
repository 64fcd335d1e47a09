#!/usr/bin/env bash
# Wrap the PyInstaller folder in dist/billing-admin into a Debian package:
#   /opt/billing-admin/        the frozen app
#   /usr/bin/billing-admin     the launcher on PATH
#   a desktop entry and its icon
# Usage: packaging/build-deb.sh   (after `pyinstaller build.spec`; `make package` does both)
set -euo pipefail
cd "$(dirname "$0")/.."

app=dist/billing-admin
[ -x "$app/billing-admin" ] || { echo "build-deb: $app is missing; run make package" >&2; exit 1; }
version=$(cat "$app/VERSION")
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
         "$root/usr/share/icons/hicolor/scalable/apps"
cp -a "$app" "$root/opt/billing-admin"
cat > "$root/usr/bin/billing-admin" <<'LAUNCHER'
#!/bin/sh
exec /opt/billing-admin/billing-admin "$@"
LAUNCHER
chmod 755 "$root/usr/bin/billing-admin"
cp packaging/billing-admin.desktop "$root/usr/share/applications/"
cp resources/icon.svg "$root/usr/share/icons/hicolor/scalable/apps/billing-admin.svg"

# The Qt runtime libraries the frozen app does not bundle (FACTS.md), X11/xcb for a real
# display, fontconfig and a font.
depends="libgl1, libegl1, libglib2.0-0, libx11-6, libdbus-1-3, libfontconfig1, libfreetype6, \
libxkbcommon0, libbrotli1, fonts-dejavu-core, libxkbcommon-x11-0, libxcb1, libxcb-cursor0, \
libxcb-icccm4, libxcb-keysyms1, libxcb-shape0, libxcb-xkb1, libxcb-render-util0, \
libxcb-image0, libxcb-randr0"
size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: billing-admin
Version: $version
Architecture: $arch
Maintainer: Billing Admin team <billing-admin@localhost>
Installed-Size: $size
Depends: $depends
Section: misc
Priority: optional
Description: Billing Admin — staff desktop app over Stripe Billing
 Finance staff browse and export; support staff issue paid credit top-up
 links and Customer Portal links; admins charge invoices and manage the
 catalog. Includes a local Stripe sandbox for training (no real money).
CONTROL

out="dist/billing-admin_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$root" "$out" >/dev/null
echo "$out"
