"""The files of the guest's root file system besides binaries: init, scripts.

The init is busybox ``init`` (PID-1-correct: reaps orphans, runs the
shutdown actions on SIGTERM/SIGUSR2, works as a kernel's /sbin/init under
QEMU and as PID 1 of a container's PID namespace). Its ``sysinit`` action
runs ``/etc/init.d/rcS``: mounts, DHCP on every interface (udhcpc), the
metadata service (hostname, the keypair's key for root, user_data when it
is a script), then dropbear. Everything is logged to the console.
"""

from __future__ import annotations

INITTAB = """\
# busybox init: the guest's PID 1. sysinit only mounts (init handles no
# signal until it returns); the rest of the boot runs beside it.
::sysinit:/etc/init.d/rcS
::once:/etc/init.d/boot
# a shell on the console (the serial port; a container's console pty)
::askfirst:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
"""

RCS = r"""#!/bin/sh
# pocketstack guest boot (run once by init as its sysinit action)
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
log() { echo "pocketstack-guest: $*"; }
log "booting"
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
# a kernel boot (QEMU) has an empty /dev; a container gets one made by the host
[ -c /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts 2>/dev/null
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mount -o remount,rw / 2>/dev/null
mount -t tmpfs -o mode=0755,size=16m tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/pocketstack /var/log /var/run /etc/dropbear
chmod 700 /root
case "$(hostname)" in ""|"(none)"|localhost) hostname -F /etc/hostname 2>/dev/null ;; esac
ip link set lo up
"""

BOOT = r"""#!/bin/sh
# pocketstack guest boot, second part (init's "once" action): network,
# metadata, ssh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
log() { echo "pocketstack-guest: $*"; }
/etc/init.d/network
/etc/init.d/metadata
log "starting dropbear"
dropbear -R -E -p 22 -P /run/dropbear.pid
log "boot finished"
"""

RCK = r"""#!/bin/sh
# pocketstack guest shutdown (init's shutdown action)
echo "pocketstack-guest: shutting down"
[ -f /run/dropbear.pid ] && kill "$(cat /run/dropbear.pid)" 2>/dev/null
for f in /run/udhcpc.*.pid; do [ -f "$f" ] && kill -USR2 "$(cat "$f")" 2>/dev/null; done
sync
"""

NETWORK = r"""#!/bin/sh
# Bring up every interface by DHCP.
log() { echo "pocketstack-guest: $*"; }
for dev in /sys/class/net/*; do
    ifc=${dev##*/}
    [ "$ifc" = lo ] && continue
    ip link set "$ifc" up
    log "dhcp on $ifc ($(cat "$dev/address"))"
    udhcpc -i "$ifc" -s /etc/udhcpc.script -p "/run/udhcpc.$ifc.pid" \
        -t 30 -T 1 -A 2 -b -O mtu -O staticroutes -x hostname:"$(hostname)"
done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc event handler: $1 is deconfig, bound, renew, leasefail or nak.
log() { echo "pocketstack-guest: $*"; }
event="$1"
case "$event" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    eval "$(ipcalc -p "$ip" "$subnet")"
    if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/$PREFIX "; then
        ip -4 addr flush dev "$interface"
        ip -4 addr add "$ip/$PREFIX" dev "$interface"
    fi
    if [ -n "$staticroutes" ]; then
        # RFC 3442: with classless routes the router option is ignored
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = 0.0.0.0 ]; then
                ip -4 route replace "$1" dev "$interface"
            else
                ip -4 route replace "$1" via "$2" dev "$interface"
            fi
            shift 2
        done
    elif [ -n "$router" ]; then
        for gw in $router; do
            ip -4 route replace default via "$gw" dev "$interface"
            break
        done
    fi
    if [ -n "$dns" ]; then
        : > /etc/resolv.conf
        [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
        for s in $dns; do echo "nameserver $s" >> /etc/resolv.conf; done
    fi
    log "$interface $event $ip/$PREFIX router=${router:-none} mtu=${mtu:-default}"
    ;;
leasefail|nak)
    log "$interface: no DHCP lease ($event)"
    ;;
esac
exit 0
"""

METADATA = r"""#!/bin/sh
# Read the metadata service: hostname, the keypair's key, user_data.
log() { echo "pocketstack-guest: $*"; }
# (busybox 1.35 wget -T crashes: timeouts come from the timeout applet)
MD=http://169.254.169.254/openstack/latest
DIR=/run/pocketstack
i=0
while [ $i -lt 30 ]; do
    timeout 5 wget -q -O "$DIR/meta_data.json" "$MD/meta_data.json" 2>/dev/null && break
    rm -f "$DIR/meta_data.json"
    i=$((i + 1))
    sleep 1
done
if [ ! -s "$DIR/meta_data.json" ]; then
    log "metadata service not reachable"
    exit 0
fi
json=$(tr -d '\n' < "$DIR/meta_data.json")
name=$(echo "$json" | sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' | tr -cd 'a-zA-Z0-9.-' | cut -c1-63)
if [ -n "$name" ]; then
    echo "$name" > /etc/hostname
    hostname "$name"
    log "hostname $name"
fi
keys=$(echo "$json" | sed -n 's/.*"public_keys": *{\([^}]*\)}.*/\1/p')
if [ -n "$keys" ]; then
    mkdir -p /root/.ssh
    chmod 700 /root/.ssh
    echo "$keys" | sed 's/", *"/"\n"/g' | sed -n 's/^ *"[^"]*": *"\(.*\)" *$/\1/p' \
        | sed 's/\\n//g' | grep . \
        > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    log "installed $(grep -c . /root/.ssh/authorized_keys) public key(s) for root"
fi
if timeout 10 wget -q -O "$DIR/user_data" "$MD/user_data" 2>/dev/null && [ -s "$DIR/user_data" ]; then
    if [ "$(head -c 2 "$DIR/user_data")" = "#!" ]; then
        chmod 700 "$DIR/user_data"
        log "running user_data"
        ( "$DIR/user_data" 2>&1; echo "exit status $?" ) | tee /var/log/user-data.log
        log "user_data finished"
    else
        log "user_data is not a script; left in $DIR/user_data"
    fi
fi
exit 0
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
# "*": no password login at all, but not a locked account (key logins work)
SHADOW = "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"
SHELLS = "/bin/sh\n/bin/ash\n"
HOSTNAME = "pocketstack\n"
OS_RELEASE = ('PRETTY_NAME="pocketstack guest (busybox + dropbear)"\nNAME="pocketstack guest"\n'
              'ID=pocketstack-guest\nVERSION_ID=1\n')

FILES = {
    # path: (content, mode)
    "etc/inittab": (INITTAB, 0o644),
    "etc/init.d/rcS": (RCS, 0o755),
    "etc/init.d/boot": (BOOT, 0o755),
    "etc/init.d/rcK": (RCK, 0o755),
    "etc/init.d/network": (NETWORK, 0o755),
    "etc/init.d/metadata": (METADATA, 0o755),
    "etc/udhcpc.script": (UDHCPC_SCRIPT, 0o755),
    "etc/passwd": (PASSWD, 0o644),
    "etc/shadow": (SHADOW, 0o600),
    "etc/group": (GROUP, 0o644),
    "etc/shells": (SHELLS, 0o644),
    "etc/hostname": (HOSTNAME, 0o644),
    "etc/os-release": (OS_RELEASE, 0o644),
    "etc/resolv.conf": ("", 0o644),
}

DIRS = ["proc", "sys", "dev", "run", "tmp", "root", "etc/dropbear", "var/log", "mnt",
        "home", "lib64", "usr/lib"]
