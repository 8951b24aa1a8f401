#!/usr/bin/env bash
# Builds the distro packages: vigo and vigo-server, as .deb (dpkg-deb) and .rpm (rpmbuild).
#
#   packaging/build.sh                      # cargo build --release, then package it
#   packaging/build.sh --binary PATH        # package an already built binary (no cargo)
#   packaging/build.sh --revision 2         # the package revision (default 1)
#   packaging/build.sh --out DIR            # where the packages go (default target/packages)
#
# The version is Cargo.toml's. Man pages and completions come from the binary itself
# (`vigo package-docs`), so they always match the binary they ship with. packaging/README.md
# describes the split and every file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
bin="" revision=1 out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) bin="$2"; shift 2 ;;
        --revision) revision="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "packaging/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb rpmbuild gzip strip readelf; do
    command -v "$tool" >/dev/null || { echo "packaging/build.sh: $tool is missing (apt-get install dpkg rpm gzip binutils)" >&2; exit 1; }
done
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
out="${out:-$target_dir/packages}"
if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --release --locked)
    bin="$target_dir/x86_64-unknown-linux-gnu/release/vigo"
fi
[ -x "$bin" ] || { echo "packaging/build.sh: no executable at $bin" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n1)"
deb_version="$version-$revision"
arch="$(dpkg --print-architecture)"
rpm_arch="$(uname -m)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}"
date_rfc="$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" -R)"

work="$out/work"
rm -rf "$work"
mkdir -p "$work" "$out"
rm -f "$out"/vigo*.deb "$out"/vigo*.rpm
umask 022

# --- The file trees, shared by both formats --------------------------------------------------
common="$work/tree/vigo"
server="$work/tree/vigo-server"
# A signed binary ships as it is, with its .sig (the startup gate reads /usr/bin/vigo.sig), and
# must have been stripped before it was signed; an unsigned one is stripped here. Either way the
# package holds no symbol table (lintian: unstripped-binary-or-object).
if [ -f "$bin.sig" ]; then
    if readelf -S "$bin" | grep -q '\.symtab'; then
        echo "packaging/build.sh: $bin is signed but not stripped; strip it first, then sign it:" >&2
        echo "  strip --strip-unneeded $bin && vigocli release sign $bin --key release.key" >&2
        exit 1
    fi
    install -D -m 0755 "$bin" "$common/usr/bin/vigo"
    install -D -m 0644 "$bin.sig" "$common/usr/bin/vigo.sig"
else
    install -D -m 0755 "$bin" "$common/usr/bin/vigo"
    strip --strip-unneeded "$common/usr/bin/vigo"
fi
for role in vigosrv vigocli vigo-agent; do ln -s vigo "$common/usr/bin/$role"; done

gen="$work/generated"
"$common/usr/bin/vigo" package-docs "$gen"
for page in "$gen"/man/*; do
    name="$(basename "$page")"
    section="${name##*.}"
    install -D -m 0644 "$page" "$common/usr/share/man/man$section/$name"
    gzip -9n "$common/usr/share/man/man$section/$name"
done
install -D -m 0644 "$gen/completions/vigo.bash" "$common/usr/share/bash-completion/completions/vigo"
install -D -m 0644 "$gen/completions/_vigo" "$common/usr/share/zsh/vendor-completions/_vigo"
install -D -m 0644 "$gen/completions/vigo.fish" "$common/usr/share/fish/vendor_completions.d/vigo.fish"
for role in vigosrv vigocli vigo-agent; do
    ln -s vigo "$common/usr/share/bash-completion/completions/$role"
    ln -s vigo.fish "$common/usr/share/fish/vendor_completions.d/$role.fish"
done
install -D -m 0644 "$here/tmpfiles-vigo.conf" "$common/usr/lib/tmpfiles.d/vigo.conf"

install -D -m 0644 "$here/sysusers-vigo-server.conf" "$server/usr/lib/sysusers.d/vigo-server.conf"
install -D -m 0644 "$here/tmpfiles-vigo-server.conf" "$server/usr/lib/tmpfiles.d/vigo-server.conf"
install -D -m 0644 "$here/vigo.yaml" "$server/etc/vigo/vigo.yaml"

# --- .deb ---------------------------------------------------------------------------------------
# Debian bookworm keeps units under /lib/systemd/system (lintian checks it); RPM distributions
# under /usr/lib/systemd/system.
unitdir_for() { if [ "$1" = deb ]; then echo lib/systemd/system; else echo usr/lib/systemd/system; fi; }

build_deb() {
    local pkg="$1" tree="$2" unit="$3"
    local root="$work/deb/$pkg"
    mkdir -p "$root"
    cp -a "$tree/." "$root/"
    install -D -m 0644 "$here/systemd/$unit" "$root/$(unitdir_for deb)/$unit"
    install -D -m 0644 "$here/debian/copyright" "$root/usr/share/doc/$pkg/copyright"
    sed -e "s/@PACKAGE@/$pkg/; s/@DEB_VERSION@/$deb_version/; s/@VERSION@/$version/; s/@DATE@/$date_rfc/" \
        "$here/debian/changelog" >"$root/usr/share/doc/$pkg/changelog.Debian"
    gzip -9n "$root/usr/share/doc/$pkg/changelog.Debian"
    install -D -m 0644 "$here/debian/lintian-overrides.$pkg" "$root/usr/share/lintian/overrides/$pkg"
    mkdir -p "$root/DEBIAN"
    local size
    size="$(du -sk --apparent-size "$root" | cut -f1)"
    sed -e "s/@DEB_VERSION@/$deb_version/g; s/@ARCH@/$arch/; s/@SIZE@/$size/" \
        "$here/debian/control.$pkg" >"$root/DEBIAN/control"
    for script in postinst prerm postrm; do
        install -m 0755 "$here/debian/$script.$pkg" "$root/DEBIAN/$script"
    done
    if [ -d "$root/etc" ]; then
        (cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
    fi
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) \
        >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums" "$root"/DEBIAN/conffiles 2>/dev/null || true
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${pkg}_${deb_version}_${arch}.deb" >/dev/null
}
build_deb vigo "$common" vigo-agent.service
build_deb vigo-server "$server" vigosrv.service

# --- .rpm ---------------------------------------------------------------------------------------
rpmroot="$work/rpm"
mkdir -p "$rpmroot/tree"
cp -a "$common/." "$server/." "$rpmroot/tree/"
for unit in vigosrv.service vigo-agent.service; do
    install -D -m 0644 "$here/systemd/$unit" "$rpmroot/tree/$(unitdir_for rpm)/$unit"
done
install -D -m 0644 "$here/debian/copyright" "$rpmroot/tree/usr/share/licenses/vigo/copyright"
install -d -m 0700 "$rpmroot/tree/var/lib/vigo" "$rpmroot/tree/srv/vigo"
rpmbuild -bb --quiet \
    --define "_topdir $rpmroot/top" \
    --define "_rpmdir $out" \
    --define "_build_id_links none" \
    --define "__os_install_post %{nil}" \
    --define "vigo_version $version" \
    --define "vigo_release $revision" \
    --define "vigo_tree $rpmroot/tree" \
    --define "vigo_date $(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')" \
    --target "$rpm_arch" \
    "$here/rpm/vigo.spec" >/dev/null
mv "$out/$rpm_arch"/*.rpm "$out"/noarch/*.rpm "$out/" && rmdir "$out/$rpm_arch" "$out/noarch"

ls -1 "$out"/*.deb "$out"/*.rpm
