#!/usr/bin/env bash
# Idle MQTT connections past this machine's open-file limit: boots a throwaway QEMU guest
# (Debian's kernel, an initramfs holding busybox and the release binaries) in which the limit
# can be raised, runs `ferromq-bench mqtt-idle` against ferromq there and prints the result.
# The sandbox this project is developed in caps RLIMIT_NOFILE at 20,000 and cannot raise it,
# so 50k / 100k connections are measured this way (README, Benchmarks).
#
# Needs: qemu-system-x86, busybox-static, linux-image-amd64 (apt), a release build
# (`cargo build --release -p ferromq -p ferromq-bench --bins`). Runs under TCG, as a nested
# KVM guest hung before its kernel printed anything here; TCG is slow, so the connect rate is
# the emulator's, and the keep alive is long so no connection expires while the others are
# still being opened (with 60 s, half of 100k had been closed by the broker, correctly).
#
#   bench/idle-vm.sh [CONNS...]        default: 50000 100000
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then conns=("$@"); else conns=(50000 100000); fi
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -1)
work=$(mktemp -d /tmp/ferromq-idle-vm.XXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,lib/x86_64-linux-gnu,lib64,proc,sys,dev,tmp}
cp /usr/bin/busybox "$root/bin/"
for lib in libgcc_s.so.1 libm.so.6 libc.so.6; do cp "/lib/x86_64-linux-gnu/$lib" "$root/lib/x86_64-linux-gnu/"; done
cp /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
strip -o "$root/ferromq" target/release/ferromq
strip -o "$root/ferromq-bench" target/release/ferromq-bench
cat > "$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
ip link set lo up
echo "1024 65535" > /proc/sys/net/ipv4/ip_local_port_range
echo 4096 > /proc/sys/net/core/somaxconn
echo 8192 > /proc/sys/net/ipv4/tcp_max_syn_backlog
ulimit -n 300000
echo "guest: \$(nproc) cpu, \$(grep MemTotal /proc/meminfo | tr -s ' '), nofile \$(ulimit -n)"
for n in ${conns[*]}; do
  mkdir -p /tmp/d\$n
  /ferromq --mqtt-listen 127.0.0.1:1883 --amqp-listen off --data-dir /tmp/d\$n --log-level warn &
  P=\$!
  sleep 1
  echo "== mqtt-idle \$n"
  /ferromq-bench mqtt-idle --addr 127.0.0.1:1883 --pid \$P --conns \$n --keep-alive 1200 --duration 5s 2>&1 | tail -3
  kill \$P; wait \$P; rm -rf /tmp/d\$n; sleep 2
done
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.gz"
accel=(-accel tcg -smp 1)
qemu-system-x86_64 "${accel[@]}" -m 6144 -kernel "$kernel" -initrd "$work/initramfs.gz" \
  -append "console=ttyS0 panic=-1 edd=off quiet" -nographic -no-reboot 2>/dev/null \
  | grep -a -E "guest:|== mqtt-idle|published|connections failed"
