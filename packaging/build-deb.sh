#!/usr/bin/env bash
# Wrap the PyInstaller folder in dist/billing-admin into a Debian package:
#   /opt/billing-admin/        the frozen app
#   /usr/bin/billing-admin     the launcher on PATH
#   a desktop entry and its icon
#   the listener service billing-admin-listen.service (disabled), its system user
#   billing-admin and /etc/billing-admin/listen.env (a conffile, 0640 root:billing-admin)
# Usage: packaging/build-deb.sh   (after `pyinstaller build.spec`; `make package` does both)
# BILLING_ADMIN_DIST=DIR takes the app from DIR/billing-admin and writes the .deb to DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

dist=${BILLING_ADMIN_DIST:-dist}
app=$dist/billing-admin
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

# The team's listener as a service: installed, never enabled or started by the package.
mkdir -p "$root/lib/systemd/system" "$root/usr/lib/sysusers.d" "$root/etc/billing-admin" \
         "$root/usr/share/doc/billing-admin"
install -m 644 packaging/billing-admin-listen.service "$root/lib/systemd/system/"
install -m 644 packaging/billing-admin.sysusers "$root/usr/lib/sysusers.d/billing-admin.conf"
install -m 640 packaging/listen.env "$root/etc/billing-admin/listen.env"
install -m 644 README.md "$root/usr/share/doc/billing-admin/README.md"
echo /etc/billing-admin/listen.env > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    # The listener's own system user (no shell, no password), then its key file's group.
    if ! getent passwd billing-admin >/dev/null; then
        if command -v systemd-sysusers >/dev/null; then
            systemd-sysusers billing-admin.conf
        else
            adduser --system --group --home /var/lib/billing-admin --no-create-home \
                --shell /usr/sbin/nologin billing-admin >/dev/null
        fi
    fi
    chown root:billing-admin /etc/billing-admin/listen.env
    chmod 0640 /etc/billing-admin/listen.env
    # Known to systemd, disabled: the one server that runs it enables it (README: Team set-up).
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
    fi
fi
exit 0
POSTINST
cat > "$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop billing-admin-listen.service >/dev/null 2>&1 || true
fi
exit 0
PRERM
cat > "$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
POSTRM
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

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
Recommends: systemd
Section: misc
Priority: optional
Description: Billing Admin — staff desktop app over Stripe Billing
 Finance staff browse and export; support staff issue paid credit top-up
 links and Customer Portal links; admins charge invoices and manage the
 catalog. Includes a local Stripe sandbox for training (no real money).
CONTROL

out="$dist/billing-admin_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$root" "$out" >/dev/null
echo "$out"
