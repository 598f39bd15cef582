"""The view of the file system an NF's scripts get: a mount namespace of their own.

Every lifecycle script runs as ``ip netns exec NS /bin/sh -c JAIL unlite-jail PROG ARGS``:
``ip netns exec`` gives it a mount namespace of its own (documented in ip-netns(8): it
unshares one to mount the namespace's /sys), which ``JAIL`` checks and then shapes, before it
execs the script:

- ``/tmp`` is an empty tmpfs of the NF's (``TMP_SIZE``), with ``/tmp/run``, ``/tmp/lock`` and
  ``/tmp/log`` made, so on OpenWrt (``/var`` → ``/tmp``) ``/var`` is private too;
- host files under /tmp that /etc links to (``KEEP``: OpenWrt's /etc/resolv.conf) are bound
  into it read-only, so the links still resolve;
- the NF's run dir (``UNLITE_RUN_DIR``) stays where it is, writable; the package folder
  (``UNLITE_PKG_DIR``) too, read-only (where they live under /tmp, they are bound into the
  new one at the same paths);
- every other mount is read-only (host files cannot be changed), but ``/proc`` and ``/sys``
  (the NF's own sysctls and devices: ``/proc/sys/net``, a bridge's knobs).

Changes to mounts stay in the namespace (``--make-rprivate``): nothing of it reaches the host,
and it ends with the script's last process. A script that cannot get it does not run (exit
126, the reason on stderr). It holds what the NF does by accident or by a naive hostile
script; a root script that remounts is not stopped (it keeps CAP_SYS_ADMIN: the IPsec client
makes mount namespaces of its own).
"""
from __future__ import annotations

import os

TMP_SIZE = "16m"        # the private /tmp: RAM on a router, and in the NF's memory cgroup

JAIL = r"""
fail() { echo "unlite-jail: $*" >&2; exit 126; }
[ /proc/self/ns/mnt -ef /proc/$PPID/ns/mnt ] && fail "not in a mount namespace of its own"
mount --make-rprivate / 2>/dev/null || true
rd=$(cd "$UNLITE_RUN_DIR" && pwd -P) && pkg=$(cd "$UNLITE_PKG_DIR" && pwd -P) ||
	fail "no run dir or package folder"
st=$rd/.jail
mkdir -m 0700 -p "$st" 2>/dev/null; [ -d "$st" ] && [ ! -L "$st" ] || fail "cannot make $st"
mount -t tmpfs -o "size=$UNLITE_TMP_SIZE,mode=1777,nosuid,nodev" unlite-tmp "$st" ||
	fail "cannot mount a tmpfs for /tmp"
t1=$rd t2=$pkg			# where they are seen: in the new /tmp when under /tmp
case $rd in /tmp/*) t1=$st${rd#/tmp} ;; esac
case $pkg in /tmp/*) t2=$st${pkg#/tmp} ;; esac
mkdir -p "$st/run" "$st/lock" "$st/log" "$t1" "$t2" || fail "cannot make the private /tmp"
mount --bind "$rd" "$t1" && mount --bind "$pkg" "$t2" || fail "cannot bind $rd and $pkg"
for f in $UNLITE_TMP_KEEP; do	# host files under /tmp that /etc links to: read-only
	[ -f "$f" ] || continue
	d=${f%/*}
	mkdir -p "$st${d#/tmp}" && : > "$st${f#/tmp}" && mount --bind "$f" "$st${f#/tmp}" &&
		mount -o remount,bind,ro "$st${f#/tmp}" || fail "cannot keep $f"
done
# moved into place; where the kernel refuses to move it (a /tmp that is itself an overlay of
# a folder holding the run dir's mount, as in OpenWrt's test sandbox), bound there instead
mount --move "$st" /tmp 2>/dev/null || mount --rbind "$st" /tmp ||
	fail "cannot mount the private /tmp"
# read-only: every mount but /proc, /sys, the private /tmp and the run dir
done="
"
while read -r dev mnt fs opts rest; do
	case $mnt in *\\*) mnt=$(printf '%b' "$mnt") ;; esac	# \040: a space
	case $mnt in /proc | /proc/* | /sys | /sys/* | /tmp | "$rd" | "$rd"/*) continue ;; esac
	case $mnt in /tmp/*) [ "$mnt" = "$pkg" ] || continue ;; esac
	case $fs in nsfs | proc | sysfs) continue ;; esac
	case ,$opts, in *,ro,*) continue ;; esac
	case $done in *"
$mnt
"*) continue ;; esac			# over-mounted twice: once is enough
	done="$done$mnt
"
	o=remount,bind,ro
	for f in nosuid nodev noexec noatime nodiratime relatime; do
		case ,$opts, in *,$f,*) o=$o,$f ;; esac
	done
	mount -o "$o" "$mnt" 2>/dev/null || fail "cannot make $mnt read-only"
done </proc/self/mounts
unset UNLITE_TMP_SIZE UNLITE_TMP_KEEP
exec "$@"
"""


KEEP = ("/etc/resolv.conf",)  # OpenWrt's links to /tmp/resolv.conf.d/: NFs may resolve names


def kept(links=KEEP):
    """The host files under /tmp that ``links`` point to (space-free paths): bound
    read-only into the private /tmp at the same place, so the links still work."""
    out = []
    for link in links:
        real = os.path.realpath(link)
        if real.startswith("/tmp/") and os.path.isfile(real) and " " not in real:
            out.append(real)
    return out


def env():
    """What ``JAIL`` reads from the script's environment."""
    return {"UNLITE_TMP_SIZE": TMP_SIZE, "UNLITE_TMP_KEEP": " ".join(kept())}


def argv(netns, prog):
    """The command line of ``prog`` (a script and its arguments) in NF namespace ``netns``
    and its own mount namespace (``JAIL``; its environment needs ``env()``)."""
    return ["ip", "netns", "exec", netns, "/bin/sh", "-c", JAIL, "unlite-jail", *prog]

